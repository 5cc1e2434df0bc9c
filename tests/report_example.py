"""``make report-example``: ``docs/report-example.png`` made the way a user gets a report.

``make demo``'s path (two crawls of 200 offers against the emulator, its catalogue moved to the
next epoch between them, then ``python -m ali1688spider report``), opened in headless Chromium at
1200 px and photographed: the top 2,600 px of the page.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.browser import Browser, file_url

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 1200, 2600


def main() -> int:
    workdir = ROOT / "var" / "report-example"
    shutil.rmtree(workdir, ignore_errors=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ALI1688_", "MONGO_", "REDIS_"))}
    subprocess.run([sys.executable, "-m", "ali1688spider.demo", "--count", "200", "--workdir", str(workdir)],
                   cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    with Browser(WIDTH, HEIGHT) as browser:
        browser.open(file_url(workdir / "report.html"))
        shot = browser.call("Page.captureScreenshot", session=True, format="png",
                            clip={"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1})
    out = ROOT / "docs" / "report-example.png"
    out.write_bytes(base64.b64decode(shot["data"]))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
