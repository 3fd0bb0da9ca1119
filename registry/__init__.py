"""The registry: what Utbildning Skaraborg's networks have sent, and what they still owe."""
