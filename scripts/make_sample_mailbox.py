"""Generate the demo mailbox: sample/maildir (a Maildir), sample/as_of.txt and sample/README.md.

    python scripts/make_sample_mailbox.py

A plausible calendar year 2025 of mail to utbildning@skaraborg.se for the five networks, up to the
demo date in sample/as_of.txt (2025-11-21). Mails come from tests/fixtures/mailfactory.py; some are
the corpus mails themselves (tests/fixtures/make_corpus.py), the rest are built here. The output is
deterministic: fixed Maildir file names (no time/pid/hostname), fixed content, LF line ends as a
local Maildir stores them. Mails dated in the last week before the demo date are in new/ (unread),
the rest in cur/ with the Seen flag.

Some networks are behind on purpose; sample/README.md lists what the demo should show.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import shutil
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

import mailfactory as mf  # noqa: E402
import make_corpus as mc  # noqa: E402
from mailfactory import PEOPLE as P  # noqa: E402
from mailfactory import Attachment, Quoted, local  # noqa: E402

SAMPLE = ROOT / "sample"
MAILDIR = SAMPLE / "maildir"
AS_OF = date(2025, 11, 21)
KANSLI = P["kansli"]

# -- the year's meetings (what the networks announced) ------------------------------------------

SKIS_MEETINGS = {  # date -> (start, end, place)
    date(2025, 2, 7): (9, 12, "Skaraborgs Kommunalförbund, Skövde"),
    date(2025, 4, 4): (9, 12, "Skaraborgs Kommunalförbund, Skövde"),
    date(2025, 6, 6): (9, 12, "Skaraborgs Kommunalförbund, Skövde"),
    date(2025, 9, 19): (9, 12, "Stadshuset Skövde"),
    date(2025, 10, 9): (13, 16, "Stadshuset Skövde"),  # a Thursday, on purpose
    date(2025, 11, 14): (9, 12, "Stadshuset Skövde"),
}
GRUNDSKOLA_MEETINGS = {
    date(2025, 2, 6): (13, 16, "Stadshuset Mariestad"),
    date(2025, 3, 13): (13, 16, "Stadshuset Lidköping"),
    date(2025, 5, 15): (13, 16, "Stadshuset Lidköping"),
    date(2025, 9, 11): (13, 16, "Rådhuset Skara"),
    date(2025, 10, 23): (13, 16, "Stadshuset Skövde"),
    date(2025, 12, 4): (13, 16, "Stadshuset Falköping"),
}
ELEVHALSA_MEETINGS = {
    date(2025, 2, 7): (9, 12, "Stadshuset Lidköping"),
    date(2025, 3, 21): (9, 12, "Stadshuset Lidköping"),
    date(2025, 5, 16): (9, 12, "Stadshuset Skövde"),
    date(2025, 8, 29): (9, 12, "Stadshuset Lidköping"),
    date(2025, 9, 26): (9, 12, "Stadshuset Lidköping"),
    date(2025, 10, 24): (9, 12, "Stadshuset Lidköping"),
    date(2025, 11, 28): (9, 12, "Stadshuset Lidköping"),
}
VUX_MEETINGS = {
    date(2025, 9, 16): (9, 15, "Campus Skövde"),
    date(2025, 10, 21): (9, 15, "Lärcentrum Vara"),
}

ORGANIZER = {"skis": "johan", "grundskola": "sofia", "elevhalsa": "emma", "vux": "marie", "introduktion": "lena"}
SUMMARY = {
    "skis": "Nätverksträff SKIS",
    "grundskola": "Nätverksträff rektorer i grundskolan",
    "elevhalsa": "Elevhälsonätverket – nätverksträff",
    "vux": "Vux-nätverket",
    "introduktion": "IM-nätverket",
}


def invite(network: str, d: date, start: int, end: int, place: str, sent: datetime) -> bytes:
    org = P[ORGANIZER[network]]
    members = mf.members_of(network)
    attendees = [p for p in members if p is not org]
    seed = f"sample-invite-{network}-{d.isoformat()}"
    ics = mf.outlook_ics(
        method="REQUEST",
        uid=mf.outlook_uid(seed),
        sequence=0,
        summary=SUMMARY[network],
        start=datetime(d.year, d.month, d.day, start),
        end=datetime(d.year, d.month, d.day, end),
        location=place,
        organizer=org,
        attendees=[*attendees, mf.SHARED_MAILBOX],
        dtstamp=sent,
        description="Välkomna! Dagordning bifogas i separat utskick.",
    )
    return mf.outlook_mail(
        sender=org,
        to=[*attendees, KANSLI],
        subject=SUMMARY[network],
        date=sent,
        seed=seed,
        blocks=["Välkomna! Dagordning bifogas i separat utskick."],
        calendar=(ics, "REQUEST"),
        cte="base64",
    )


def pick(network: str, d: date, n: int) -> list[mf.Person]:
    """A deterministic 'who came' subset of the network's baseline members."""
    members = mf.members_of(network)
    ranked = sorted(members, key=lambda p: mf.digest(f"{network}{d}{p.email}", 4))
    keep = set(id(p) for p in ranked[:n])
    return [p for p in members if id(p) in keep]


MINUTES_STYLE = {
    # network: (file name pattern, heading pattern, format, subject pattern)
    "skis": (
        "Minnesanteckningar SKIS {iso}.pdf",
        "Minnesanteckningar SKIS {iso}",
        "pdf",
        "Minnesanteckningar SKIS {dm}",
    ),
    "grundskola": (
        "Protokoll grundskola {yymmdd}.docx",
        "Protokoll – nätverket Rektorer i grundskolan {iso}",
        "docx",
        "Protokoll grundskola {dm}",
    ),
    "elevhalsa": (
        "Minnesanteckningar elevhälsa {iso}.docx",
        "Minnesanteckningar elevhälsonätverket {iso}",
        "docx",
        "Minnesanteckningar elevhälsa {iso}",
    ),
    "introduktion": (
        "Protokoll IM-nätverket {iso}.docx",
        "Protokoll IM-nätverket {iso}",
        "docx",
        "Protokoll IM-nätverket {dm}",
    ),
    "vux": ("Protokoll Vux {iso}.pdf", "Protokoll Vux-nätverket {iso}", "pdf", "Protokoll Vux-nätverket {iso}"),
}


def minutes(network: str, d: date, sent: datetime, sender: str | None = None, note: str | None = None) -> bytes:
    fname_p, head_p, fmt, subj_p = MINUTES_STYLE[network]
    fields = {"iso": d.isoformat(), "yymmdd": d.strftime("%y%m%d"), "dm": f"{d.day}/{d.month}"}
    who = P[sender or ORGANIZER[network]]
    present = pick(network, d, max(5, len(mf.members_of(network)) - 3))
    blocks = mf.minutes_blocks(
        heading=head_p.format(**fields),
        subheading=f"Nätverksträff {mf.sv_date(d, weekday=True)}",
        present=mf.present_lines(present),
        items=mf.STANDARD_ITEMS[network],
        signed_by=who,
    )
    fname = fname_p.format(**fields)
    if fmt == "pdf":
        data = mf.make_pdf(blocks, when=sent, author=who.name, title=head_p.format(**fields))
    else:
        data = mf.make_docx(blocks, when=sent, author=who.name)
    return mf.outlook_mail(
        sender=who,
        to=[KANSLI],
        subject=subj_p.format(**fields),
        date=sent,
        seed=f"sample-minutes-{network}-{d.isoformat()}",
        blocks=["Hej!", note or "Bifogar anteckningarna från senaste nätverksträffen."],
        sig=mf.signature(who),
        attachments=[Attachment(fname, data)],
    )


ROLE_SV = {
    "chair": "Ordförande",
    "secretary": "Sekreterare",
    "presidium": "Presidium",
    "member": "Ledamot",
    "school_chief": "Skolchef",
}


def member_list(network: str, sender: str, sent: datetime, subject: str) -> bytes:
    """The baseline list of a network as an xlsx (Namn, E-post, Kommun, Roll)."""
    who = P[sender]
    rows = [["Namn", "E-post", "Kommun", "Roll"]] + [
        [P[k].name, P[k].email, P[k].municipality or mf.FEDERATION, ROLE_SV[r]] for k, r in mf.BASELINE_ROLES[network]
    ]
    return mf.outlook_mail(
        sender=who,
        to=[KANSLI],
        subject=subject,
        date=sent,
        seed=f"sample-list-{network}",
        blocks=["Hej!", "Bifogar förteckningen över nätverkets medlemmar 2025."],
        sig=mf.signature(who),
        attachments=[Attachment(f"{subject}.xlsx", mf.make_xlsx(rows, when=sent, author=who.name))],
    )


def before(d: date, days: int, hour: int = 10, minute: int = 0) -> datetime:
    x = d - timedelta(days=days)
    return local(x.year, x.month, x.day, hour, minute)


def after(d: date, days: int, hour: int = 14, minute: int = 0) -> datetime:
    return before(d, -days, hour, minute)


def build() -> list[tuple[str, bytes]]:
    """(short name, raw mail) for the whole year; sorted by Date afterwards."""
    out: list[tuple[str, bytes]] = []

    def corpus(short: str) -> None:
        out.append((short, mc.built(short).eml))

    # --- SKIS: list + spring dates in January, autumn dates in June (one Thursday), invitations,
    #     minutes after every meeting (June's late; November's not yet due on the demo date).
    corpus("skis-medlemmar-och-datum")
    out.append(
        (
            "skis-datum-ht",
            mf.outlook_mail(
                sender=P["johan"],
                to=[KANSLI],
                subject="Mötesdatum SKIS HT 2025",
                date=local(2025, 6, 5, 16, 20),
                seed="sample-skis-ht",
                client="outlook",
                charset="iso-8859-1",
                header_charset="iso-8859-1",
                blocks=[
                    "Hej!",
                    "Höstens träffar för SKIS:",
                    "fredag 19 september 2025 kl. 09.00-12.00, Stadshuset Skövde\n"
                    "torsdag 9 oktober 2025 kl. 13.00-16.00, Stadshuset Skövde (OBS torsdag)\n"
                    "fredag 14 november 2025 kl. 09.00-12.00, Stadshuset Skövde",
                ],
                sig=mf.signature(P["johan"]),
            ),
        )
    )
    for d, (s, e, place) in SKIS_MEETINGS.items():
        out.append((f"skis-kallelse-{d}", invite("skis", d, s, e, place, before(d, 14, 9, 30))))
    out.append(("skis-protokoll-0207", minutes("skis", date(2025, 2, 7), after(date(2025, 2, 7), 4, 15, 10))))
    out.append(("skis-protokoll-0404", minutes("skis", date(2025, 4, 4), after(date(2025, 4, 4), 4, 11, 40))))
    out.append(
        (
            "skis-protokoll-0606-sent",
            minutes(
                "skis",
                date(2025, 6, 6),
                local(2025, 7, 1, 9, 5),
                note="Ursäkta att det dröjt, här kommer minnesanteckningarna från juniträffen.",
            ),
        )
    )
    out.append(("skis-protokoll-0919", minutes("skis", date(2025, 9, 19), after(date(2025, 9, 19), 4, 13, 0))))
    out.append(("skis-protokoll-1009", minutes("skis", date(2025, 10, 9), after(date(2025, 10, 9), 5, 8, 45))))
    # A member answers the autumn dates with only thanks (a person has to look at it).
    out.append(
        (
            "skis-tack-vi-ses",
            mf.outlook_mail(
                sender=P["sara"],
                to=[P["johan"]],
                cc=[KANSLI],
                subject="SV: Mötesdatum SKIS HT 2025",
                date=local(2025, 6, 9, 8, 2),
                seed="sample-skis-thanks",
                blocks=["Tack, vi ses!"],
                sig=mf.signature(P["sara"], "short"),
                quoted=Quoted(
                    sender=P["johan"],
                    sent=local(2025, 6, 5, 16, 20),
                    to=[KANSLI],
                    subject="Mötesdatum SKIS HT 2025",
                    blocks=["Hej!", "Höstens träffar för SKIS:", "fredag 19 september 2025 ..."],
                ),
            ),
        )
    )

    # --- Grundskola: dates + list in January, invitations, minutes (March's late, May's in winmail.dat).
    out.append(
        (
            "grundskola-medlemmar",
            member_list(
                "grundskola", "sofia", local(2025, 1, 13, 8, 47), "Medlemsförteckning rektorer i grundskolan 2025"
            ),
        )
    )
    corpus("grundskola-datum-vt-ht-kortformat")
    for d, (s, e, place) in GRUNDSKOLA_MEETINGS.items():
        out.append((f"grundskola-kallelse-{d}", invite("grundskola", d, s, e, place, before(d, 14, 11, 15))))
    out.append(
        ("grundskola-protokoll-0206", minutes("grundskola", date(2025, 2, 6), after(date(2025, 2, 6), 4, 9, 30)))
    )
    out.append(
        (
            "grundskola-protokoll-0313-sent",
            minutes(
                "grundskola",
                date(2025, 3, 13),
                local(2025, 4, 8, 16, 40),
                note="Protokollet från mars, förlåt att det blev sent.",
            ),
        )
    )
    corpus("grundskola-protokoll-winmail-dat")  # 15 May
    out.append(
        ("grundskola-protokoll-0911", minutes("grundskola", date(2025, 9, 11), after(date(2025, 9, 11), 4, 10, 5)))
    )
    out.append(
        ("grundskola-protokoll-1023", minutes("grundskola", date(2025, 10, 23), after(date(2025, 10, 23), 4, 14, 50)))
    )

    # --- Elevhälsa: spring dates in January, the member list only late in March (after an unknown
    #     sender tried in February), autumn dates in June, invitations, all minutes.
    corpus("elevhalsa-datum-veckonummer")
    out.append(
        (
            "elevhalsa-autosvar-februari",
            mf.auto_reply(
                sender=P["kristina"],
                subject="Automatiskt svar: Påminnelse: förteckning över medlemmar saknas – Elevhälsa",
                date=local(2025, 2, 3, 8, 0, 7),
                seed="sample-oof-kristina",
                text="Hej! Jag är ledig till och med 7 februari. Brådskande ärenden: Emma Holmberg, emma.holmberg@lidkoping.se.",
                in_reply_to="<reminder-elevhalsa-member_list-2025@mailbot.skaraborg.se>",
            ),
        )
    )
    corpus("medlemslista-fran-okand-gmail")
    rows = [["Namn", "Kommun", "E-post", "Roll"]] + [
        [
            P[k].name,
            P[k].municipality,
            P[k].email,
            {
                "chair": "Ordförande",
                "secretary": "Sekreterare",
                "presidium": "Presidiet",
                "school_chief": "Skolchef",
            }.get(r, ""),
        ]
        for k, r in mf.BASELINE_ROLES["elevhalsa"]
    ]
    out.append(
        (
            "elevhalsa-medlemmar-sent-mars",
            mf.outlook_mail(
                sender=P["emma"],
                to=[KANSLI],
                subject="Förteckning medlemmar elevhälsonätverket 2025",
                date=local(2025, 3, 28, 14, 12),
                seed="sample-eh-list",
                blocks=["Hej!", "Ber om ursäkt för dröjsmålet – här är förteckningen för 2025 (csv)."],
                sig=mf.signature(P["emma"]),
                attachments=[Attachment("medlemmar_elevhalsa_2025.csv", mf.make_csv(rows), content_type="text/csv")],
            ),
        )
    )
    corpus("elevhalsa-datum-ht-rubrik")
    for d, (s, e, place) in ELEVHALSA_MEETINGS.items():
        out.append((f"elevhalsa-kallelse-{d}", invite("elevhalsa", d, s, e, place, before(d, 14, 13, 20))))
    out.append(("elevhalsa-protokoll-0207", minutes("elevhalsa", date(2025, 2, 7), after(date(2025, 2, 7), 3, 10, 0))))
    corpus("elevhalsa-narvarande-kommuner")  # 21 March
    corpus("elevhalsa-filnamn-rfc2231")  # 16 May
    out.append(
        ("elevhalsa-protokoll-0829", minutes("elevhalsa", date(2025, 8, 29), after(date(2025, 8, 29), 3, 9, 40)))
    )
    out.append(
        ("elevhalsa-protokoll-0926", minutes("elevhalsa", date(2025, 9, 26), after(date(2025, 9, 26), 3, 11, 0)))
    )
    out.append(
        ("elevhalsa-protokoll-1024", minutes("elevhalsa", date(2025, 10, 24), after(date(2025, 10, 24), 3, 15, 30)))
    )

    # --- Introduktion: spring dates and list in January, never any autumn dates (4 meetings of the 6
    #     the commission asks), April's minutes late after a reminder, the competence plan in November.
    out.append(
        (
            "im-medlemmar",
            member_list("introduktion", "lena", local(2025, 1, 14, 15, 5), "Förteckning IM-nätverket 2025"),
        )
    )
    corpus("im-datum-den-14e-mars")
    corpus("im-protokoll-i-brodtexten")  # 13 February
    out.append(("im-protokoll-0314", minutes("introduktion", date(2025, 3, 14), local(2025, 3, 18, 8, 20))))
    corpus("sv-paminnelse-bara-tack")  # reminder about 10 April answered with thanks only
    out.append(
        (
            "im-protokoll-0410-sent",
            minutes(
                "introduktion",
                date(2025, 4, 10),
                local(2025, 5, 5, 13, 30),
                note="Här kommer till slut protokollet från 10 april.",
            ),
        )
    )
    corpus("im-protokoll-bifogat-mejl")  # 22 May, as an attached mail
    corpus("fraga-fran-ny-medlem")
    corpus("im-kompetensutvecklingsplan")

    # --- Vux: list and six dates in January, minutes for February, March (forwarded by the chair)
    #     and May (late, as a reply to a reminder); September's and October's minutes never come.
    corpus("vux-medlemmar-fornamn-efternamn")
    corpus("vux-datum-iso")
    out.append(
        (
            "vux-protokoll-0211",
            minutes(
                "vux",
                date(2025, 2, 11),
                local(2025, 2, 14, 10, 10),
                sender="katarina",
                note="Protokoll från träffen hos oss i Mariestad.",
            ),
        )
    )
    corpus("vux-vb-protokoll-fran-ordforande")  # 25 March
    corpus("vux-delrapport-sprakstod")
    corpus("sv-paminnelse-med-protokoll")  # 20 May, late
    for d, (s, e, place) in VUX_MEETINGS.items():
        out.append((f"vux-kallelse-{d}", invite("vux", d, s, e, place, before(d, 14, 8, 50))))
    out.append(
        (
            "vux-autosvar-oktober",
            mf.auto_reply(
                sender=P["marie"],
                subject="Automatiskt svar: Påminnelse: protokoll saknas – Vuxenutbildning, nätverksträff 16 september 2025",
                date=local(2025, 10, 1, 8, 0, 11),
                seed="sample-oof-marie",
                text="Hej! Jag är på tjänsteresa vecka 40 och svarar när jag är tillbaka.",
                in_reply_to="<reminder-vux-minutes-2025-09-16@mailbot.skaraborg.se>",
            ),
        )
    )
    out.append(
        (
            "vux-franvaro-oktober",
            mf.auto_reply(
                sender=P["anders"],
                subject="Frånvaro",
                date=local(2025, 10, 1, 8, 0, 14),
                seed="sample-oof-anders",
                text="Jag är föräldraledig till och med 31 oktober 2025.",
                auto_submitted="auto-generated",
                charset="iso-8859-1",
                header_charset="iso-8859-1",
            ),
        )
    )

    # --- Everyone: newsletters.
    corpus("nyhetsbrev-skolverket")
    corpus("nyhetsbrev-skr")
    return out


README = """# Sample mailbox (the demo)

`maildir/` is a Maildir (`cur/`, `new/`, `tmp/`) with a plausible calendar year 2025 of mail to
utbildning@skaraborg.se from the five networks, up to the demo date in `as_of.txt` (**2025-11-21**).
`mailbot demo` reads it; evaluate obligations as of that date. **Generated — do not edit by hand**:

    python scripts/make_sample_mailbox.py

The mails are built by `tests/fixtures/mailfactory.py` (Outlook/Exchange-style MIME with real xlsx, docx,
pdf, csv, ics and winmail.dat attachments); about a third are the corpus mails themselves
(`tests/fixtures/corpus/`, whose .json files state what each should register). The output is
deterministic: fixed Maildir file names, LF line ends. Mails of the last week before the demo date are
in `new/` (unread), the rest in `cur/` with the Seen flag. The registry is assumed to start empty: each
network's member list is its first mail, except Elevhälsa's (see below).

## What is in it

{count} mails: member lists, meeting dates (body lists, ISO dates, week numbers, a "HT 2025:" list),
Outlook invitations (text/calendar REQUEST), minutes (PDF, docx, pasted in the body, inside winmail.dat,
inside an attached mail, a forward "VB:"), replies to the product's reminders ("SV: Påminnelse: …"),
a deliverable per network that has one, out-of-office replies, newsletters and a few mails that need a
person.

## Behind on purpose (what the demo should show on 2025-11-21)

Default deadlines assumed: member list and dates by 31 January, minutes within 14 days of a meeting.

| network | on purpose |
|---|---|
| skis | one meeting on a **Thursday** (9 Oct 2025; SKIS meets on Fridays); June minutes **late** (6 Jun, sent 1 Jul); minutes of 14 Nov not yet due (due 28 Nov). 6 meetings, all 15 municipalities on the list. |
| grundskola | March minutes **late** (13 Mar, sent 8 Apr). Otherwise complete; 4 Dec planned. |
| elevhalsa | member list **late** (sent 28 Mar; an unknown gmail sender tried in February → review; the chair's out-of-office answered the reminder). Dates, 7 meetings (28 Nov planned) and all minutes in order. Until 28 March no Elevhälsa person is on any list. |
| introduktion | **below 6 meetings**: only the 4 spring meetings (13 Feb, 14 Mar, 10 Apr, 22 May); autumn dates **never sent**. April minutes **late** (sent 5 May, after a reminder answered only with thanks). Competence-development plan (deliverable) sent 14 Nov. |
| vux | **behind on minutes**: 20 May sent late (9 Jun, as a reply to a reminder); **16 Sep and 21 Oct never sent** (overdue). 2 Dec planned. Part report on vocational education with language support sent 28 May. |

Mails that need a person (review): the gmail member list (10 Feb), the thank-you reply to a reminder
(28 Apr), "SV: Mötesdatum SKIS HT 2025 – Tack, vi ses!" (9 Jun), a member's question (3 Sep).
Ignored: three out-of-office replies and two newsletters.

## The mails

| date | from | subject |
|---|---|---|
"""


def maildir_name(i: int, when: datetime, short: str, seen: bool) -> str:
    base = f"{int(when.timestamp())}.M{i:03d}P1Q1.sample-{short}"
    return base + (":2,S" if seen else "")


def write(mails: list[tuple[str, bytes]]) -> list[tuple[str, datetime]]:
    if MAILDIR.exists():
        shutil.rmtree(MAILDIR)
    mailbox.Maildir(MAILDIR, create=True)  # cur/ new/ tmp/
    (MAILDIR / "tmp" / ".keep").write_text("")  # git keeps no empty folder; cur/ and new/ hold mail
    dated = []
    for short, raw in mails:
        when = email.message_from_bytes(raw, policy=email.policy.default)["date"].datetime
        dated.append((when, short, raw))
    dated.sort(key=lambda t: (t[0], t[1]))
    index = []
    recent = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=mf.TZ) - timedelta(days=7)
    for i, (when, short, raw) in enumerate(dated, 1):
        seen = when < recent
        name = maildir_name(i, when, short, seen)
        (MAILDIR / ("cur" if seen else "new") / name).write_bytes(raw.replace(b"\r\n", b"\n"))
        index.append((short, when))
    (SAMPLE / "as_of.txt").write_text(AS_OF.isoformat() + "\n")
    (SAMPLE / ".gitattributes").write_text("maildir/** -text\n")  # keep the mail bytes exactly as written
    lines = []
    for when, _short, raw in dated:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        sender = msg["from"].addresses[0]
        subject = str(msg["subject"]).replace("|", "/")
        lines.append(f"| {when.astimezone(mf.TZ):%Y-%m-%d} | {sender.display_name or sender.addr_spec} | {subject} |")
    (SAMPLE / "README.md").write_text(README.replace("{count}", str(len(dated))) + "\n".join(lines) + "\n")
    return index


def check() -> list[str]:
    problems = []
    box = mailbox.Maildir(MAILDIR, create=False)
    n = 0
    for key in sorted(box.keys()):
        n += 1
        raw = box.get_bytes(key)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        when = msg["date"].datetime
        if when.date() > AS_OF:
            problems.append(f"{key}: dated after the demo date")
        names = mc.walk_message(msg, problems, key)
        assert names is not None
    if not 60 <= n <= 120:
        problems.append(f"{n} mails, expected 60-120")
    return problems


def main() -> int:
    mails = build()
    again = build()
    if mails != again:
        print("not deterministic", file=sys.stderr)
        return 1
    index = write(mails)
    problems = check()
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    print(f"wrote {len(index)} mails to {MAILDIR}, as of {AS_OF}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
