"""``report.html`` for a run directory: one self-contained page (plots and rollout videos
embedded as data URIs, no network needed) with what ``report.md`` says.

The Markdown report is the single source of the content; this module renders it, inlines
every image it references and adds the run's rollout videos (``*.gif``, ``*.mp4``) at the
end. A small script marks the page once every image has loaded (``data-images-broken`` on
the body: how many did not), which the browser test reads.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import markdown

from rlprune.io import atomic_write_text
from rlprune.run_report import report_markdown

__all__ = ["IMAGE_CHECK_SCRIPT", "write_html_report"]

_MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".mp4": "video/mp4"}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #1d1d1f; padding: 0 1em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; }
img, video { max-width: 100%; }
figure { margin: 1em 0; }
figcaption { color: #555; font-size: 0.9em; }
"""

IMAGE_CHECK_SCRIPT = """
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0);
  document.body.dataset.imagesBroken = String(broken.length);
  document.body.dataset.images = String(document.images.length);
});
"""


def _data_uri(path: Path) -> str:
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _inline_images(body: str, run_dir: Path) -> str:
    """``<img src="plot.png">`` of files in the run directory as data URIs."""
    def inline(match: re.Match) -> str:
        source = run_dir / html.unescape(match.group(2))
        if not source.is_file():
            return match.group(0)
        return f"{match.group(1)}{_data_uri(source)}{match.group(3)}"

    return re.sub(r'(<img[^>]*\bsrc=")([^":]+)(")', inline, body)


def _videos(run_dir: Path) -> str:
    """Figures for the run's rollout videos."""
    figures = []
    for path in sorted(p for p in run_dir.iterdir() if p.suffix.lower() in (".gif", ".mp4")):
        caption = html.escape(path.stem.replace("_", " "))
        media = (f'<img src="{_data_uri(path)}" alt="{caption}">' if path.suffix == ".gif"
                 else f'<video controls loop src="{_data_uri(path)}"></video>')
        figures.append(f"<figure>{media}<figcaption>{caption}</figcaption></figure>")
    return "<h2>Rollouts</h2>\n" + "\n".join(figures) if figures else ""


def write_html_report(run_dir: str | Path) -> Path:
    """Writes ``RUN_DIR/report.html`` and returns its path.

    Raises:
        FileNotFoundError: no such directory.
        ValueError: the directory holds no rlprune run.
    """
    run_dir = Path(run_dir)
    text = report_markdown(run_dir)
    body = _inline_images(markdown.markdown(text, extensions=["tables"]), run_dir)
    title = html.escape(text.splitlines()[0].lstrip("# "))
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n"
            f"{_videos(run_dir)}\n<script>{IMAGE_CHECK_SCRIPT}</script>\n</body></html>\n")
    return atomic_write_text(run_dir / "report.html", page)
