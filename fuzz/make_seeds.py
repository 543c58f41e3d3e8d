#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ (libFuzzer's corpus, not committed) from the fixtures and
from hand-made hostile cases, as files named seed-*; what libFuzzer adds stays beside them.

Run from anywhere: python3 fuzz/make_seeds.py. The archive seeds start with the
mode byte fuzz_targets/archive.rs reads (bit 0: the rest is a plain tar to gzip; bit 1:
extract_tar_gz rather than unpack_tar_gz).
"""
import gzip
import io
import pathlib
import tarfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fuzz" / "corpus"


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


for p in sorted(ROOT.glob("fixtures/apps/*/Procfile")):
    put("procfile", f"fixture-{p.parent.name}", p.read_bytes())
put("procfile", "crlf-comments", "# app\r\nweb: python app.py --port $PORT\r\n\nworker:  sidekiq \n")
put("procfile", "errors", "web: a\nweb: b\nweb-1: c\nrelease:\nno colon\n")

for p in sorted(ROOT.glob("buildpacks/*/bin/release")):
    text = p.read_text()
    if "<<'YAML'" in text:
        put("release_yaml", f"bundled-{p.parent.parent.name}", text.split("<<'YAML'\n", 1)[1].split("YAML\n", 1)[0])
put("slugignore", "fixture", (ROOT / "fixtures/apps/slugignore/.slugignore").read_bytes())
HAND_MADE = {
    "release_yaml": {
        "empty-map": "--- {}\n",
        "dashes": "---\n",
        "full": "---\naddons:\n  - heroku-postgresql:hobby-dev\nconfig_vars:\n  JAVA_OPTS: -Xmx300m\n  N: 3\ndefault_process_types:\n  web: npm start\n",
        "anchors": "a: &a [x, y]\nb: *a\nconfig_vars: {K: *a}\n",
        "flow": "{addons: [a, 1, true, ~], config_vars: {? [k] : v}}\n",
        "tags": "!!map {default_process_types: !!str web}\n",
        "multi-doc": "---\na: 1\n---\nb: 2\n",
        "block-scalars": "default_process_types:\n  web: |\n    line1\n    line2\n  worker: >-\n    folded\n",
    },
    "env_file": {
        "dotenv": "# c\nexport A=1\nB='two words'\nC=\"line\\nnext\"\nD=plain # note\nE=\n",
        "bad": "A=1\nnot a pair\n_X=1\nexport  Y = \"unterminated\n",
        "pair": "DATABASE_URL=postgres://u:p@h/db?x=1",
        "escapes": "A=\"\\\\\\\"\\n\\\"\"\nB='it''s'\r\n",
    },
    "buildpacks_file": {
        "two": "https://github.com/heroku/heroku-buildpack-nodejs\nhttps://github.com/Scalingo/python-buildpack#v1\n",
        "local": "# comment\n\r\n./buildpacks/nodejs\nfile:///srv/bp.git#main\n/abs/bp.tgz\n",
        "only-comments": "# nothing\n\n   \n",
    },
    "slugignore": {
        "globs": "**/*.log\n!keep.txt\nsub/**\n/deep/a/\n*\n",
        "escapes": "\\#not-comment\n\\!bang\n[a-z]*.txt\n{a,b}.log\n",
        "links": "out\nsentinel.log\nsub/dir\n../outside\n/../outside/sentinel\n",
    },
}
for target, cases in HAND_MADE.items():
    for name, text in cases.items():
        put(target, name, text)


def tar_bytes(members, fmt=tarfile.GNU_FORMAT):
    """members: (name, kind, payload) with kind file/dir/sym/hard/fifo/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            data = None
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
            else:
                info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
                if kind in ("sym", "hard"):
                    info.linkname = payload
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue().rstrip(b"\0")
    # Keep the two end-of-archive blocks, drop the padding to tar's 10 KiB record.
    return raw + b"\0" * (-len(raw) % 512) + b"\0" * 1024


archives = {
    "app": [("app", "dir", None), ("app/Procfile", "file", "web: ./run\n"), ("app/bin", "dir", None),
            ("app/bin/run", "file", "#!/bin/sh\n"), ("app/link", "sym", "bin/run"), ("app/hard", "hard", "app/Procfile")],
    "dot-root": [(".", "dir", None), ("./app", "dir", None), ("./app/a", "file", "a")],
    "parent": [("app", "dir", None), ("app/../../escape", "file", "x")],
    "absolute": [("/tmp/escape", "file", "x")],
    "link-out": [("app", "dir", None), ("app/up", "sym", ".."), ("app/up2", "sym", "../.."), ("app/up/x", "file", "x")],
    # The first finding: inside the archive, but `..` from the top folder is not the app.
    "link-to-parent": [("app", "dir", None), ("app/up", "sym", "..")],
    "link-chain": [("app", "dir", None), ("app/a", "sym", "b/.."), ("app/b", "sym", "."), ("app/c", "sym", "a/../..")],
    "link-then-file": [("app", "dir", None), ("app/d", "sym", "/tmp"), ("app/d/x", "file", "x")],
    "hard-out": [("app", "dir", None), ("app/h", "hard", "../outside/sentinel"), ("app/h2", "hard", "/etc/passwd")],
    "special": [("app", "dir", None), ("app/fifo", "fifo", None), ("app/dev", "chr", None)],
    "replace": [("app", "dir", None), ("app/x", "file", "1"), ("app/x", "sym", "y"), ("app/x", "file", "2"), ("app/x", "dir", None)],
    "long-names": [("app", "dir", None), ("app/" + "n" * 200, "file", "x"), ("app/" + "d" * 120 + "/" + "f" * 120, "file", "y")],
}
for name, members in archives.items():
    fmt = tarfile.PAX_FORMAT if name == "long-names" else tarfile.GNU_FORMAT
    tar = tar_bytes(members, fmt)
    put("archive", f"{name}-tar-extract", b"\x03" + tar)
    put("archive", f"{name}-tar-unpack", b"\x01" + tar)
    put("archive", f"{name}-gz-extract", b"\x02" + gzip.compress(tar, mtime=0))
big = tar_bytes([("app", "dir", None), ("app/big", "file", "z" * 70000)])
put("archive", "over-limit-gz", b"\x02" + gzip.compress(big, mtime=0))

# A request head, then the app's response head to it: fuzz_targets/router_head.rs.
for name, text in {
    "get-keep-alive": "GET / HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
    "chunked-and-length": "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: gzip, chunked\r\nTE: trailers\r\n\r\n"
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
    "http10": "GET / HTTP/1.0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nHTTP/1.0 200 OK\r\n\r\n",
    "websocket": "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\n\r\n"
    "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    "head-spoofed": "HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Request-ID: mine\r\nX-Real-IP: 6.6.6.6\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
    "expect-continue": "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\nX-Forwarded-For: 1.1.1.1\r\n\r\n"
    "HTTP/1.1 100 Continue\r\n\r\n",
    "two-lengths": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: abc\r\n\r\n",
    # Found by this target: relayed as `HTTP/1.1 50 ...` before statuses below 100 were refused.
    "status-050": "GET / HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 050 Switching Protocols\r\n\r\n",
    # Found by this target: both ids reached the app before only the first was kept.
    "two-request-ids": "GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: a\r\nX-Request-ID: b\r\n\r\n",
    # Found by this target: 95 headers became 101 once the router's were added.
    "many-headers": "GET / HTTP/1.1\r\nHost: a\r\n" + "".join(f"X-H{i}: {i}\r\n" for i in range(92)) + "\r\n"
    "HTTP/1.1 200 OK\r\n" + "".join(f"X-H{i}: {i}\r\n" for i in range(98)) + "Content-Length: 0\r\n\r\n",
    # Found by this target: Transfer-Encoding named in Connection was dropped, not the framing.
    "connection-names-framing": "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: Content-Length, close\r\n\r\n",
    # RFC 9112 §6.1 and §3.2: both framings close the client connection; Host is required.
    "length-and-chunked": "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
    "no-host": "GET / HTTP/1.1\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    "two-hosts": "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    "gzip-until-close": "GET / HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nProxy-Connection: close\r\n\r\n",
}.items():
    put("router_head", name, text)

# Chunked bodies, followed by what comes next on the connection: fuzz_targets/chunked_body.rs.
for name, data in {
    "wiki": b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nGET /next",
    "bare-lf": b"3\nabc\n0\n\n",
    "extensions": b"3 ; a=\"b\"\r\nabc\r\nA;x\r\n0123456789\r\n0\r\nT: \r\r\n\r\n",
    "huge-size": b"fffffffffffffff\r\n",
    "bad-data-end": b"2\r\nab\rX",
}.items():
    put("chunked_body", name, data)

