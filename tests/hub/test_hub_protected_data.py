"""Inside a hub-spawned server, the wizard reads protected XRootD data with the user's own
IAM token, which the hub keeps in ``$BEARER_TOKEN_FILE``: nothing to do for the user.

Real parts: the hub in dev mode whose IAM (the dev OpenID provider) serves HTTPS with a
test CA's certificate; a Debian ``xrootd`` with the SciTokens plugin trusting that issuer
(group ``/cms`` reads ``/store/cms``, ``/atlas`` reads ``/store/atlas``); chromium running
the wizard notebook in alice's JupyterLab.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import jwt
import pytest

from ..browser import screenshot
from ..servers.tls_ca import make_test_ca
from ..servers.xrootd_tokens import experiments_store, token_xrootd_available
from ..wizard.conftest import WIZARD_NOTEBOOK
from ..wizard.steps import add_cut_in_wizard, run_wizard_notebook
from .conftest import sign_in
from .test_hub_login import server_pids, token_file, wait_for


def test_wizard_reads_protected_xrootd_data_with_the_token_the_hub_keeps(
        make_hub, browser, samples: Path, tmp_path: Path) -> None:
    reason = token_xrootd_available()
    if reason is not None:
        pytest.fail(f"token XRootD test server unavailable: {reason}", pytrace=False)
    ca = make_test_ca(tmp_path / "ca")
    hub = make_hub(ca=ca)
    with experiments_store(samples, hub.idp.issuer, ca) as storage:
        page = sign_in(browser, hub, "alice", "alice-pass")
        page.wait_for_url("**/user/alice/lab**", timeout=90_000)
        path = token_file(hub, "alice").resolve()
        token = wait_for(lambda: path.exists() and path.read_text().strip(), 30, "token file")
        assert path.stat().st_mode & 0o777 == 0o600
        assert jwt.decode(token, options={"verify_signature": False})["wlcg.groups"] == [
            "/cms", "/cms/ml"]
        for pid in server_pids(hub, "alice"):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"BEARER_TOKEN_FILE={path}".encode() in environ
            assert not [e for e in environ if e.startswith(b"BEARER_TOKEN=")]

        # alice's file list names protected files; the wizard preselects and opens them
        cms = [storage.url_for(f"/store/cms/{name}.root") for name in ("signal", "background")]
        samples_dir = hub.state / "homes" / "alice" / "samples"
        (samples_dir / "files.txt").write_text("".join(f"{url}\n" for url in cms))
        (samples_dir / "labels.txt").write_text("1\n0\n")
        page.goto(f"{hub.url}/user/alice/lab/tree/{quote(WIZARD_NOTEBOOK)}")
        run_wizard_notebook(page, "hub-protected-data")
        described = page.get_by_text(re.compile(r"^4,000 entries, "))
        assert described.count() == 2, page.locator(".mlaas4hep-wizard").inner_text()
        preview = add_cut_in_wizard(page, "nJets >= 4")  # reads events of both files
        assert re.fullmatch(r"[\d,]+ of 8,000 events pass .*", preview), preview
        page.get_by_role("tab", name="1. Data").click()

        # the same file under /store/atlas: refused, and the row says why
        atlas = storage.url_for("/store/atlas/signal.root")
        page.get_by_placeholder("root://host//path/file.root").fill(atlas)
        page.get_by_role("button", name="Add URL").click()
        refusal = page.locator(".mlaas4hep-error", has_text="refused to read it")
        refusal.wait_for(timeout=60_000)
        refusal.scroll_into_view_if_needed()
        screenshot(page, "hub-protected-data-2-refused")
        text = refusal.inner_text()
        assert text.startswith(f"{atlas}: {storage.url.rstrip('/')} refused to read it: the "
                               f"token from $BEARER_TOKEN_FILE ({path}) (issuer "
                               f"{hub.idp.issuer}, groups /cms, /cms/ml,"), text
        assert "does not allow reading this path" in text and token not in text, text
        page.close()

