"""An XRootD test server that admits WLCG/SciTokens bearer tokens of one issuer.

Needs the Debian packages ``xrootd-server`` and ``xrootd-scitokens-plugins``.
The daemon (see :mod:`tests.servers.xrootd`) is configured as a storage
element accepting tokens would be:

- ``sec.protocol ztn``: clients log in with a token (XRootD requires TLS for
  that, so the server speaks TLS with a certificate from the test CA);
- ``ofs.authlib ++ libXrdAccSciTokens.so``: the SciTokens plugin checks the
  token (signature against the issuer's JWKS, expiry, audience) and hands its
  ``wlcg.groups`` to the default authorisation database, which maps groups
  to paths (``g /cms /store/cms lr``); storage scopes
  (``storage.read:/cms``) relative to ``base_path`` are honoured too.

The SciTokens library fetches the issuer's metadata and keys over HTTPS with
libcurl, which trusts only the compiled-in bundle
(``/etc/ssl/certs/ca-certificates.crt``; no environment variable moves it).
So the daemon runs in its own mount namespace in which the test CA is bind
mounted over that file: the machine's trust store is never touched.

The daemon must reach the issuer on 127.0.0.1, so it shares the network
namespace of the caller, which must hold nothing but loopback (the tests run
under ``tests/isolated.sh``): no lookup or packet leaves the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .tls_ca import CAFiles
from .xrootd import XRootDServer, _unprivileged_user, xrootd_available

PLUGIN = "libXrdAccSciTokens.so"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
INSTALL_HINT = "apt-get install xrootd-server xrootd-scitokens-plugins"


def token_xrootd_available() -> str | None:
    """Return None if a token-checking XRootD server can be started here, else the reason."""
    reason = xrootd_available()
    if reason is not None:
        return reason
    libdirs = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")
    if not any(Path(d, "libXrdAccSciTokens-5.so").exists() for d in libdirs):
        return f"the XRootD SciTokens plugin is not installed (run: {INSTALL_HINT})"
    if not Path(SYSTEM_CA_BUNDLE).is_file():
        return f"{SYSTEM_CA_BUNDLE} is missing (apt-get install ca-certificates)"
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        return ("this network namespace has interfaces besides loopback; run under "
                "tests/isolated.sh")
    return None


class TokenXRootDServer(XRootDServer):
    """:class:`XRootDServer` over TLS that authorises reads by bearer token.

    ``groups`` maps a token group (as in ``wlcg.groups``, e.g. ``/cms``) to the
    paths it may read (e.g. ``["/store/cms"]``). Tokens must come from
    ``issuer`` with ``audience`` in ``aud``.
    """

    def __init__(self, export_dir: Path, *, workdir: Path, issuer: str, audience: str,
                 ca: CAFiles, groups: Mapping[str, list[str]], base_path: str = "/store",
                 startup_timeout: float = 90.0) -> None:
        super().__init__(export_dir, workdir=workdir, isolate_network=False,
                         startup_timeout=startup_timeout)
        self.issuer, self.audience, self.ca = issuer, audience, ca
        self.groups, self.base_path = dict(groups), base_path
        self.environment["XDG_CACHE_HOME"] = str(self.rundir / "cache")

    def _prepare_dirs(self) -> None:
        super()._prepare_dirs()
        tls = self.rundir / "tls"
        tls.mkdir(exist_ok=True)
        shutil.copy(self.ca.cert, tls / "server.pem")
        shutil.copy(self.ca.key, tls / "server.key")
        shutil.copytree(self.ca.cadir, tls / "cadir", dirs_exist_ok=True)
        shutil.copy(self.ca.ca, self.workdir / "trusted-ca.pem")
        (self.workdir / "trusted-ca.pem").chmod(0o644)
        (self.rundir / "cache").mkdir(exist_ok=True)
        user = _unprivileged_user() if os.geteuid() == 0 else None
        for path in [tls, *tls.rglob("*"), self.rundir / "cache"]:
            if user is not None:
                os.chown(path, user.pw_uid, user.pw_gid)
        (tls / "server.key").chmod(0o600)

    def _write_config(self) -> None:
        super()._write_config()
        authdb = self.workdir / "authdb"
        authdb.write_text("".join(f"g {group} {' '.join(f'{p} lr' for p in paths)}\n"
                                  for group, paths in self.groups.items()))
        scitokens = self.workdir / "scitokens.cfg"
        scitokens.write_text(
            "[Global]\n"
            f"audience = {self.audience}\n"
            "onmissing = passthrough\n\n"
            "[Issuer hub]\n"
            f"issuer = {self.issuer}\n"
            f"base_path = {self.base_path}\n")
        tls = self.rundir / "tls"
        with self.config_path.open("a") as config:
            config.write(
                f"xrd.tls {tls / 'server.pem'} {tls / 'server.key'}\n"
                f"xrd.tlsca certdir {tls / 'cadir'}\n"
                "xrootd.seclib libXrdSec.so\n"
                "sec.protocol ztn\n"
                "ofs.authorize\n"
                f"acc.authdb {authdb}\n"
                f"ofs.authlib ++ {PLUGIN} config={scitokens}\n")
        for path in (authdb, scitokens):
            path.chmod(0o644)

    def _command(self) -> list[str]:
        unshare = ["unshare"] if os.geteuid() == 0 else ["unshare", "--map-current-user"]
        bind = f'mount --bind "$0" {SYSTEM_CA_BUNDLE} && exec "$@"'
        return [*unshare, "--mount", "sh", "-c", bind, str(self.workdir / "trusted-ca.pem"),
                *super()._command()]


@contextlib.contextmanager
def experiments_store(samples: Path, issuer: str, ca: CAFiles) -> Iterator[TokenXRootDServer]:
    """A running :class:`TokenXRootDServer` exporting ``signal.root`` and ``background.root``
    of ``samples`` under ``/store/cms`` (readable by group ``/cms``) and ``/store/atlas``
    (group ``/atlas``), for tokens of ``issuer`` with ``aud`` the issuer.

    Its files live in a folder of their own, not below ``/tmp/pytest-of-<user>``: a pytest
    session starting meanwhile makes that 0700 again, and the unprivileged daemon reads its
    configuration there throughout.
    """
    with tempfile.TemporaryDirectory(prefix="mlaas4hep-tokens-") as tmp:
        export = Path(tmp) / "export"
        for area in ("cms", "atlas"):
            (export / "store" / area).mkdir(parents=True)
            for name in ("signal.root", "background.root"):
                shutil.copy(samples / name, export / "store" / area / name)
        with TokenXRootDServer(export, workdir=Path(tmp) / "xrootd", issuer=issuer,
                               audience=issuer, ca=ca,
                               groups={"/cms": ["/store/cms"], "/atlas": ["/store/atlas"]}
                               ) as server:
            yield server
