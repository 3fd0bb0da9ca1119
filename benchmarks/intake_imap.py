"""Intake over IMAP: `mailbot poll` against a bare imapclient fetch loop, on a real Dovecot (issue 4).

    python benchmarks/intake_imap.py                 # 10,000 mails
    python benchmarks/intake_imap.py --count 2000

Starts a throwaway Dovecot with tests/servers.py, fills INBOX with N small Swedish mails (a fifth with a
one-page PDF made with fpdf2), then measures, each in its own subprocess so that wall time and peak RSS
(resource.getrusage(RUSAGE_CHILDREN).ru_maxrss of a wrapper whose only child is the measured command) compare
like with like:

- `mailbot poll --no-send` recording all N mails into a fresh SQLite registry;
- a bare imapclient loop fetching the same UIDs in batches of 500 with BODY.PEEK[] (and nothing else);
- the idle pass (a second poll, nothing new) with 1,000 and with 10,000 mails in the folder: the whole CLI
  process, and the pass alone (jobs.poll in-process, median of 5).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500


# --- measuring a subprocess -----------------------------------------------------------------------


def measure(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> dict[str, float]:
    """Run argv under a wrapper process: wall seconds, the peak RSS of the largest process and of the whole
    process tree (MiB), and the CPU seconds of the tree."""
    wrapper = [sys.executable, __file__, "--_measure", "--", *argv]
    done = subprocess.run(wrapper, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tree(root: int) -> list[int]:
    """root and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _pss(pid: int) -> int:
    """Proportional set size (KiB) of one process: its private pages plus its share of the pages it shares with
    others (the forkserver's children share most of theirs), so the sum over a process tree counts each page
    once. 0 when it is gone or the kernel has no smaps_rollup."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        pass
    return 0


def _sample(pid: int) -> tuple[int, float]:
    """(VmRSS KiB, CPU seconds so far) of one process; (0, 0.0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return rss_pages * (os.sysconf("SC_PAGE_SIZE") // 1024), (int(fields[11]) + int(fields[12])) / ticks


def _role(pid: int, main: int) -> str:
    """What a process of the measured tree is: the command itself, the reader's forkserver (a child of the
    command), or a reader (a child of the forkserver)."""
    if pid == main:
        return "main"
    try:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return "gone"
    return "forkserver" if parent == main else "reader"


def _measure_main(argv: list[str]) -> None:
    import threading

    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = threading.Event()
    peak_tree = peak_pss = 0
    cpu_seen: dict[int, float] = {}  # the last CPU seconds sampled of each process of the tree
    at_peak: list[tuple[str, int, int]] = []  # (role, RSS KiB, PSS KiB) of each process when the PSS peaked

    def sample() -> None:
        nonlocal peak_tree, peak_pss, at_peak
        while not done.is_set():
            total = pss = 0
            parts = []
            for pid in _tree(process.pid):
                rss, cpu = _sample(pid)
                share = _pss(pid)
                total += rss
                pss += share
                parts.append((_role(pid, process.pid), rss, share))
                cpu_seen[pid] = max(cpu_seen.get(pid, 0.0), cpu)
            peak_tree = max(peak_tree, total)
            if pss > peak_pss:
                peak_pss, at_peak = pss, parts
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = process.communicate()[1]
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.stderr.write(stderr.decode(errors="replace"))
        sys.exit(process.returncode)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # descendants that were waited for
    print(json.dumps({
        "seconds": seconds,
        "rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux: the largest single process
        "tree_rss_mib": peak_tree / 1024,  # summed VmRSS of the tree, sampled every 50 ms
        "tree_pss_mib": peak_pss / 1024,  # summed PSS of the tree (shared pages counted once), same samples
        "at_peak": [[role, rss / 1024, pss / 1024] for role, rss, pss in at_peak],  # MiB per process
        # CPU: rusage counts the descendants that were reaped; the sampled sum also sees a worker that was not
        # (each process's last sample, so up to 50 ms short per process). The larger is reported.
        "cpu_seconds": max(usage.ru_utime + usage.ru_stime, sum(cpu_seen.values())),
        "cpu_rusage": usage.ru_utime + usage.ru_stime,
        "cpu_sampled": sum(cpu_seen.values()),
        "cpu_main": cpu_seen.get(process.pid, 0.0),  # the measured command's own process (the intake's main)
    }))  # fmt: skip


def _bare_main(host: str, port: int, user: str, password: str, folder: str) -> None:
    """What a minimal fetcher does: SEARCH, then FETCH BODY.PEEK[] in batches of 500."""
    from imapclient import IMAPClient

    client = IMAPClient(host, port=port, ssl=False, use_uid=True, timeout=120)
    client.login(user, password)
    client.select_folder(folder, readonly=False)
    uids = sorted(client.search(["ALL"]))
    total = 0
    for start in range(0, len(uids), BATCH):
        for data in client.fetch(uids[start : start + BATCH], [b"BODY.PEEK[]"]).values():
            total += len(data[b"BODY[]"])
    client.logout()
    print(f"{len(uids)} mails, {total} bytes", file=sys.stderr)


# --- the mailbox ----------------------------------------------------------------------------------

SENDERS = [
    ("Åsa Öberg", "asa.oberg@falkoping.se"),
    ("Johan Lindberg", "johan.lindberg@skovde.se"),
    ("Märta Sjögren", "marta.sjogren@lidkoping.se"),
    ("Björn Ågren", "bjorn.agren@mariestad.se"),
]


def small_pdf() -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, "Minnesanteckningar\nNärvarande: Skövde, Falköping, Lidköping\n1. Föregående protokoll")
    return bytes(pdf.output())


def _headed(number: int, tag: str) -> tuple[EmailMessage, str]:
    """Mail `number`'s headers (sender, subject, date, Message-ID) and its sender's name."""
    name, address = SENDERS[number % len(SENDERS)]
    message = EmailMessage(policy=SMTP)
    message["From"] = f"{name} <{address}>"
    message["To"] = "Utbildning Skaraborg <utbildning@skaraborg.se>"
    message["Subject"] = f"Fråga om nätverksträffen, ärende {number}"
    message["Date"] = format_datetime(datetime(2025, 3, 3, 8, 0, tzinfo=UTC) + timedelta(minutes=3 * number))
    message["Message-ID"] = f"<bench-{tag}-{number:06d}@{address.split('@')[1]}>"
    return message, name


def make_mail(number: int, pdf: bytes, tag: str) -> bytes:
    message, name = _headed(number, tag)
    message.set_content(
        f"Hej!\n\nJag har en fråga om ärende {number}: går det bra att vi ses i Skövde på torsdag?\n"
        "Vi är tre från kommunen.\n\nMed vänliga hälsningar\n" + name + "\n"
    )
    if number % 5 == 0:
        message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"underlag-{number}.pdf")
    return message.as_bytes()


DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # fonts-dejavu-core (installed by .ci/run)


def logo_jpeg(side: int) -> bytes:
    """A municipality's logo as a JPEG (noise, so it does not compress away): what makes real exports weigh."""
    import io
    import random

    from PIL import Image

    rng = random.Random(side)
    image = Image.frombytes("RGB", (side, side), bytes(rng.randrange(256) for _ in range(side * side * 3)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=60)
    return out.getvalue()


def minutes_pdf() -> bytes:
    """Minutes as a municipality's Word-to-PDF export looks: several pages of Swedish text in an embedded font
    (about 57 kB, as in issue 14's mix)."""
    import io

    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("DejaVu", fname=str(DEJAVU))
    pdf.set_font("DejaVu", size=11)
    logo = io.BytesIO(logo_jpeg(285))
    for page in range(1, 5):
        pdf.add_page()
        pdf.image(logo, x=170, y=8, w=25)
        pdf.multi_cell(0, 6, f"Minnesanteckningar, nätverksträff {page}\n"
                             "Närvarande: Skövde, Falköping, Lidköping, Mariestad, Hjo, Tibro, Töreboda\n",
                       new_x="LMARGIN", new_y="NEXT")  # fmt: skip
        for point in range(1, 13):
            pdf.multi_cell(0, 6, f"§ {page * 12 + point}. Genomgång av elevhälsans arbete i kommunerna: "
                                 "åtgärdsprogram, närvarofrämjande insatser, samverkan med socialtjänsten och "
                                 "regionens barn- och ungdomspsykiatri. Beslut: nätverket återkommer i ärendet.",
                           new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    return bytes(pdf.output())


def member_docx() -> bytes:
    """A member list as a Word file (a table of names, roles, municipalities, addresses; about 59 kB with its
    styles, as in issue 14's mix)."""
    import io

    from docx import Document

    document = Document()
    document.add_picture(io.BytesIO(logo_jpeg(198)))
    document.add_heading("Medlemsförteckning, nätverket för elevhälsa", level=1)
    document.add_paragraph("Uppdaterad inför vårterminen. Ordförande och sekreterare anges i kolumnen Roll.")
    table = document.add_table(rows=1, cols=4)
    for cell, heading in zip(table.rows[0].cells, ("Namn", "Roll", "Kommun", "E-post"), strict=True):
        cell.text = heading
    for row in range(60):
        name, address = SENDERS[row % len(SENDERS)]
        values = (f"{name} {row}", "Ledamot" if row > 1 else ("Ordförande", "Sekreterare")[row], "Skövde", address)
        for cell, value in zip(table.add_row().cells, values, strict=True):
            cell.text = value
    for _ in range(40):
        document.add_paragraph("Nätverket träffas fyra gånger per termin; protokoll skickas till utbildning@skaraborg.se.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


HTML = """<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><style>
p.MsoNormal {{margin:0cm; font-size:11.0pt; font-family:"Calibri",sans-serif;}}</style></head>
<body lang="SV" link="#0563C1"><div class="WordSection1"><p class="MsoNormal">Hej!</p>
<p class="MsoNormal">&nbsp;</p><p class="MsoNormal">{text}</p><p class="MsoNormal">&nbsp;</p>
<p class="MsoNormal">Med vänliga hälsningar<br>{name}</p></div></body></html>"""


def make_issue_mail(number: int, files: tuple[bytes, bytes], tag: str) -> bytes:
    """Issue 14's mix: an Outlook-style mail (plain text and HTML); every tenth with the minutes PDF, every tenth
    from the fifth on with the member list DOCX."""
    message, name = _headed(number, tag)
    message["Thread-Topic"] = f"Fråga om nätverksträffen, ärende {number}"
    message["Content-Language"] = "sv-SE"
    message["X-MS-Has-Attach"] = "yes" if number % 5 == 0 else ""
    text = (f"Jag har en fråga om ärende {number}: går det bra att vi ses i Skövde på torsdag? "
            "Vi är tre från kommunen och tar med underlaget från förra träffen.")  # fmt: skip
    message.set_content(f"Hej!\n\n{text}\n\nMed vänliga hälsningar\n{name}\n")
    message.add_alternative(HTML.format(text=text, name=name), subtype="html")
    if number % 10 == 0:
        message.add_attachment(files[0], maintype="application", subtype="pdf", filename=f"Minnesanteckningar {number}.pdf")
    elif number % 10 == 5:
        message.add_attachment(
            files[1], maintype="application", subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename=f"Medlemsförteckning {number}.docx",
        )  # fmt: skip
    return message.as_bytes()


def fill(server, folder: str, start: int, stop: int, pdf: bytes, tag: str, mix: str = "small") -> None:  # type: ignore[no-untyped-def]
    """Append mails start..stop-1 with MULTIAPPEND (one command per 500 mails); `mix` "issue" makes issue 14's."""
    files = (minutes_pdf(), member_docx()) if mix == "issue" else None
    with server.client() as client:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        for first in range(start, stop, BATCH):
            numbers = range(first, min(first + BATCH, stop))
            if files is not None:
                client.multiappend(folder, [make_issue_mail(n, files, tag) for n in numbers])
            else:
                client.multiappend(folder, [make_mail(n, pdf, tag) for n in numbers])


def env_for(server, database: Path, folder: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    # Bytecode caching on, as an installed package has it (with PYTHONDONTWRITEBYTECODE set, every start of an
    # editable install compiles the project again: about a second of the main process and of the forkserver).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBOT_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        MAILBOT_IMAP__HOST=server.host,
        MAILBOT_IMAP__PORT=str(server.port),
        MAILBOT_IMAP__USER=server.user,
        MAILBOT_IMAP__PASSWORD=server.password,
        MAILBOT_IMAP__SSL="false",
        MAILBOT_IMAP__STARTTLS="false",
        MAILBOT_IMAP__FOLDER=folder,
        MAILBOT_DATABASE__URL=f"sqlite:///{database}",
        MAILBOT_SMTP__DIRECTORY=str(database.parent / "outbox"),
    )
    return env


def idle_pass_in_process(env: dict[str, str], repeat: int = 5) -> float:
    """The idle pass alone (no interpreter start-up): median seconds of jobs.poll with nothing new."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        from mailbot import jobs
        from registry.runtime import Runtime

        rt = Runtime(config_path=None)
        rt.engine()
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            result = jobs.poll(rt, datetime.now(UTC), send=False)
            times.append(time.perf_counter() - started)
            assert result.report.idle, result.report
        rt.engine().dispose()
        return statistics.median(times)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="mails in the mailbox (default 10000)")
    parser.add_argument("--idle-sizes", default="1000,10000", help="folder sizes for the idle pass ('' for none)")
    parser.add_argument("--mix", choices=("issue", "small"), default="issue",
                        help="issue: issue 14's Outlook-style mails, a fifth with a 57 kB PDF or a 59 kB DOCX "
                             "(default); small: short plain mails, a fifth with a one-page PDF")  # fmt: skip
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    import logging

    logging.getLogger("mailbot").setLevel(logging.WARNING)
    from servers import DovecotServer  # type: ignore[import-not-found]

    server = DovecotServer()
    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    try:
        server.start()
        pdf = small_pdf()
        started = time.perf_counter()
        fill(server, "INBOX", 0, args.count, pdf, "inbox", args.mix)
        size = sum(server.sizes_of_all("INBOX").values()) if hasattr(server, "sizes_of_all") else None
        print(f"filled INBOX with {args.count} mails ({args.mix} mix"
              + (f", {size / 1e6:.0f} MB" if size else "") + f") in {time.perf_counter() - started:.1f} s")  # fmt: skip

        env = env_for(server, work / "main.sqlite3", "INBOX")
        # Compile once (the project's bytecode cache), so the measured pass does not.
        subprocess.run(["mailbot", "check", "--json"], env=env, cwd=work, capture_output=True, check=False)
        subprocess.run([sys.executable, "-c", "import mailbot.understand.pipeline, mailbot.understand.decode, pypdf"],
                       env=env, cwd=work, capture_output=True, check=False)  # fmt: skip
        bare = measure(
            [sys.executable, __file__, "--_bare", server.host, str(server.port), server.user, server.password, "INBOX"]
        )
        poll = measure(["mailbot", "poll", "--no-send"], env=env, cwd=work)
        flags = server.flags_of_all("INBOX")
        seen = sum(1 for f in flags.values() if "\\Seen" in f)
        print(f"\nfirst pass, {args.count} mails:")
        print(f"  bare imapclient loop (BODY.PEEK[], batches of {BATCH}): {bare['seconds']:8.2f} s  "
              f"CPU {bare['cpu_seconds']:7.2f} s  peak RSS {bare['rss_mib']:7.1f} MiB")  # fmt: skip
        print(f"  mailbot poll --no-send:                          {poll['seconds']:8.2f} s  "
              f"CPU {poll['cpu_seconds']:7.2f} s  peak RSS {poll['rss_mib']:7.1f} MiB (largest process), "
              f"{poll['tree_rss_mib']:.1f} MiB (process tree, summed RSS), {poll['tree_pss_mib']:.1f} MiB "
              f"(process tree, summed PSS)")  # fmt: skip
        print("  at the PSS peak: " + ", ".join(f"{role} {rss:.0f} MiB RSS / {pss:.0f} MiB PSS"
                                                for role, rss, pss in poll["at_peak"]))  # fmt: skip
        print(f"  ratio mailbot/bare: {poll['seconds'] / bare['seconds']:.1f}x time, {poll['rss_mib'] / bare['rss_mib']:.1f}x RSS; "
              f"{args.count / poll['seconds']:.0f} mails/s; \\Seen set on {seen} mails; "
              f"CPU rusage {poll['cpu_rusage']:.2f} s, sampled {poll['cpu_sampled']:.2f} s (main process "
              f"{poll['cpu_main']:.2f} s, readers and forkserver {poll['cpu_sampled'] - poll['cpu_main']:.2f} s); "
              f"load {os.getloadavg()}")  # fmt: skip

        print("\nidle pass (second poll, nothing new):")
        for size in sorted(int(s) for s in args.idle_sizes.split(",") if s):
            if size == args.count:
                idle_env = env
            else:
                folder = f"Idle{size}"
                fill(server, folder, 0, size, pdf, folder.lower(), args.mix)
                idle_env = env_for(server, work / f"idle{size}.sqlite3", folder)
                subprocess.run(["mailbot", "poll", "--no-send"], env=idle_env, cwd=work, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            cli = measure(["mailbot", "poll", "--no-send"], env=idle_env, cwd=work)
            alone = idle_pass_in_process(idle_env)
            print(f"  {size:6d} mails: CLI process {cli['seconds']:.2f} s (peak RSS {cli['rss_mib']:.1f} MiB); "
                  f"the pass alone {alone * 1000:.1f} ms")  # fmt: skip
    finally:
        server.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_measure":
        _measure_main(sys.argv[3:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--_bare":
        _bare_main(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        main()
