"""`registry report`: the yearly report for the school chiefs as one HTML file (and a PDF where Chromium is
installed). Registered in the command table of registry/cli.py. SQLModel and the report's builder (Jinja2) are imported
when the command runs."""

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from registry.errors import ExpectedError
from registry.runtime import AsOfOption, JsonOption, UsageError, context_runtime, print_json, reported_errors

# Debian's package is `chromium`; other systems name the same browser differently.
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# The machine may have no network: nothing in the browser should try to reach one.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PDF_TIMEOUT_SECONDS = 120


class PdfError(ExpectedError):
    """No converter, or the converter failed; the message says which."""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def write_pdf(html_file: Path, pdf_file: Path) -> None:
    """Print `html_file` to `pdf_file` with headless Chromium (A4, no header or footer)."""
    browser = find_browser()
    if browser is None:
        raise PdfError("no PDF converter installed (install Debian's chromium)")
    with tempfile.TemporaryDirectory(prefix="mailbot-chromium-") as profile:
        command = [
            browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
            f"--print-to-pdf={pdf_file.resolve()}", html_file.resolve().as_uri(),
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PDF_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(f"{browser} did not finish the PDF within {PDF_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0 or not pdf_file.is_file() or pdf_file.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PdfError(f"{browser} could not write {pdf_file} (exit {done.returncode}): {last}")


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def report(
    ctx: typer.Context,
    year: Annotated[int, typer.Option("--year", help="The calendar year to report on.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    network: Annotated[
        list[str] | None, typer.Option("--network", help="Only this network (repeatable); default every network.")
    ] = None,
    as_of: AsOfOption = None,
    pdf: Annotated[
        Path | None, typer.Option("--pdf", help="Also write the report as PDF here (needs Chromium).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The yearly report for the school chiefs: one self-contained HTML file in Swedish (and a PDF)."""
    from sqlmodel import Session

    from registry.report import VERDICT_TEXT, ReportYearError, gather_report, render_report

    rt = context_runtime(ctx)
    with reported_errors(rt):
        if not 2000 <= year <= 2999:
            raise UsageError(f"--year: {year} is not a year the registry can hold (2000-2999)")
        keys = [rt.network_key(key) for key in network] if network else None
        today = rt.today(as_of)
        if today.year < year:
            raise UsageError(f"--year: {year} has not begun on {today.isoformat()}")
        with Session(rt.reader()) as session:
            try:
                built = gather_report(session, rt.registry, year, today, rt.tz, keys)
            except ReportYearError as error:
                raise UsageError(str(error)) from None
        _write_atomically(out, render_report(built))
        if pdf is not None:
            write_pdf(out, pdf)
        if as_json:
            print_json({**built.as_json(), "html": str(out), "pdf": str(pdf) if pdf else None})
            return
        written = f"{out}" + (f" and {pdf}" if pdf else "")
        per = "" if built.complete else f" per {built.as_of.isoformat()}"
        typer.echo(f"Årsrapport {year}{per}: {len(built.networks)} nätverk -> {written}")
        for item in built.networks:
            typer.echo(f"  {item.key}: {VERDICT_TEXT.get((item.verdict, built.complete), item.verdict.value)}")
            for reason in item.reasons:
                typer.echo(f"    – {reason}")
