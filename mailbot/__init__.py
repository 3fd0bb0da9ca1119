"""The worker: reads the shared mailbox, understands it, records it, and sends reminders."""
