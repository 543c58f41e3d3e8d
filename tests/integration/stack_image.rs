//! A stack image made at test time and a registry on 127.0.0.1 that serves it, for every
//! test that needs an image (pulling, importing, building and running inside one).
//!
//! The image is plainly not the host: its own `/etc/os-release` (Ubuntu 26.04), and
//! Debian's static busybox (`/bin/busybox`, from `busybox-static`) with its applet links.
//! It has two layers, the first gzip and the second zstd; the second whites out a file of
//! the first (`.wh.NAME`) and makes a folder opaque (`.wh..wh..opq`). Its tag `latest` is
//! an image index: the host's platform, and a decoy for the other one whose os-release
//! says `ID=decoy`.
//!
//! The registry speaks the distribution API as Docker Hub does: every `/v2/` request
//! without the token gets 401 and a `WWW-Authenticate: Bearer realm=...` challenge, and
//! the token endpoint hands one out. It counts requests, and can corrupt a blob.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest as _, Sha256};

/// The os-release of the test image, as scalingo-26 would have it.
pub const OS_RELEASE: &str = "PRETTY_NAME=\"Ubuntu 26.04 LTS (shipway test image)\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"26.04\"\nVERSION=\"26.04 LTS\"\nID=ubuntu\nID_LIKE=debian\n";

/// Debian's static busybox, which the image carries as `/bin/busybox`.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked to busybox in the image's `/bin`.
pub const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "echo", "env", "id", "mkdir", "rm", "sleep", "touch", "pwd", "test", "grep", "sed",
    "head", "tail", "wc", "uname", "hostname", "ps", "kill", "true", "false", "cp", "mv", "ln", "chmod",
    "stat", "readlink", "dirname", "basename", "find", "tr", "wget", "nc", "httpd", "printf", "tee", "date",
    "mount", "df", "du", "xargs",
];

pub const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// Bytes as a registry stores them, named by their digest.
#[derive(Clone)]
pub struct Blob {
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            digest: sha256(&bytes),
            media_type: media_type.to_string(),
            bytes,
        }
    }

    fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.bytes.len(),
        })
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

/// An image made at test time: the host platform's manifest and its blobs, under an index
/// that also lists a decoy for the other platform.
pub struct TestImage {
    pub index: Blob,
    pub manifest: Blob,
    pub config: Blob,
    /// The host image's layers, compressed as served: gzip, then zstd.
    pub layers: Vec<Blob>,
    /// The same layers uncompressed, as `docker save` writes them.
    pub tars: Vec<Vec<u8>>,
    /// The decoy's manifest, config and layer.
    pub decoy: Vec<Blob>,
}

/// The OCI name of this machine's architecture.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

fn other_arch() -> &'static str {
    if host_arch() == "amd64" {
        "arm64"
    } else {
        "amd64"
    }
}

/// A layer's tar, entries owned by root with a fixed time.
pub struct LayerTar {
    builder: tar::Builder<Vec<u8>>,
}

impl Default for LayerTar {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerTar {
    pub fn new() -> LayerTar {
        LayerTar {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_780_000_000);
        h.set_size(size);
        h
    }

    pub fn dir(mut self, path: &str, mode: u32) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.builder.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }

    pub fn file(mut self, path: &str, mode: u32, bytes: &[u8]) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Regular, mode, bytes.len() as u64);
        self.builder.append_data(&mut h, path, bytes).unwrap();
        self
    }

    pub fn symlink(mut self, path: &str, target: &str) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    pub fn hardlink(mut self, path: &str, target: &str) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Link, 0o644, 0);
        self.builder.append_link(&mut h, path, target).unwrap();
        self
    }

    /// An entry whose name is written raw into the header, as a hostile layer would (the
    /// tar crate refuses to write `..` itself).
    pub fn raw_file(mut self, name: &str, bytes: &[u8]) -> LayerTar {
        let mut h = Self::header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        let field = &mut h.as_old_mut().name;
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        self.builder.append(&h, bytes).unwrap();
        self
    }

    pub fn tar(self) -> Vec<u8> {
        self.builder.into_inner().unwrap()
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// The first layer: busybox, its applets, os-release, and what the second layer removes.
pub fn base_layer(os_release: &str) -> Vec<u8> {
    let busybox = std::fs::read(BUSYBOX).expect("busybox-static is installed (/bin/busybox)");
    let mut layer = LayerTar::new()
        .dir("bin", 0o755)
        .dir("etc", 0o755)
        .dir("tmp", 0o1777)
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .dir("usr/local", 0o755)
        .dir("usr/local/bin", 0o755)
        .dir("root", 0o700)
        .dir("var", 0o755)
        .dir("var/lib", 0o755)
        .dir("var/lib/opaque", 0o755)
        .file("var/lib/opaque/old-1", 0o644, b"lower layer\n")
        .dir("var/lib/opaque/old-dir", 0o755)
        .file("var/lib/opaque/old-dir/old-2", 0o644, b"lower layer\n")
        .file("etc/os-release", 0o644, os_release.as_bytes())
        .file("etc/hostname", 0o644, b"shipway-test-image\n")
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
        )
        .file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")
        .file("etc/removed-by-layer-2", 0o644, b"whited out\n")
        .file("usr/bin/setuid-tool", 0o4755, b"#!/bin/sh\necho setuid\n")
        .file("bin/busybox", 0o755, &busybox);
    for applet in APPLETS {
        layer = layer.symlink(&format!("bin/{applet}"), "busybox");
    }
    layer.symlink("usr/bin/env", "/bin/busybox").tar()
}

/// The second layer: a whiteout, an opaque folder, and a file of its own.
pub fn top_layer() -> Vec<u8> {
    LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/.wh.removed-by-layer-2", 0o644, b"")
        .file("etc/layer-2", 0o644, b"second layer\n")
        .dir("var/lib/opaque", 0o755)
        .file("var/lib/opaque/.wh..wh..opq", 0o644, b"")
        .file("var/lib/opaque/new", 0o644, b"upper layer\n")
        .hardlink("etc/os-release-link", "etc/os-release")
        .tar()
}

fn config(arch: &str, tars: &[Vec<u8>]) -> Blob {
    let diff_ids: Vec<String> = tars.iter().map(|t| sha256(t)).collect();
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
            "Cmd": ["/bin/sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    Blob::new(CONFIG, serde_json::to_vec(&config).unwrap())
}

fn manifest(config: &Blob, layers: &[Blob]) -> Blob {
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.descriptor(),
        "layers": layers.iter().map(Blob::descriptor).collect::<Vec<_>>(),
    });
    Blob::new(MANIFEST, serde_json::to_vec(&m).unwrap())
}

/// The test image with `os_release` as its `/etc/os-release`.
pub fn busybox_image(os_release: &str) -> TestImage {
    image_of(vec![(base_layer(os_release), GZIP), (top_layer(), ZSTD)])
}

/// An image of these layers (uncompressed tars), each compressed as its media type says
/// (`GZIP`, `ZSTD`, or a plain tar's), under an index with the decoy.
pub fn image_of(layers: Vec<(Vec<u8>, &str)>) -> TestImage {
    let tars: Vec<Vec<u8>> = layers.iter().map(|(t, _)| t.clone()).collect();
    let layers: Vec<Blob> = layers
        .into_iter()
        .map(|(tar, media)| match media {
            GZIP => Blob::new(GZIP, gzip(&tar)),
            ZSTD => Blob::new(ZSTD, zstd(&tar)),
            other => Blob::new(other, tar),
        })
        .collect();
    let config = config(host_arch(), &tars);
    let manifest = manifest(&config, &layers);

    let decoy_tar = LayerTar::new()
        .dir("etc", 0o755)
        .file("etc/os-release", 0o644, b"ID=decoy\n")
        .tar();
    let decoy_layer = Blob::new(GZIP, gzip(&decoy_tar));
    let decoy_config = config_for_decoy(&decoy_tar);
    let decoy_manifest = manifest_blob(&decoy_config, &decoy_layer);

    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            platform_entry(&decoy_manifest, other_arch()),
            platform_entry(&manifest, host_arch()),
        ],
    });
    TestImage {
        index: Blob::new(INDEX, serde_json::to_vec(&index).unwrap()),
        manifest,
        config,
        layers,
        tars,
        decoy: vec![decoy_manifest, decoy_config, decoy_layer],
    }
}

fn config_for_decoy(tar: &[u8]) -> Blob {
    config(other_arch(), &[tar.to_vec()])
}

fn manifest_blob(config: &Blob, layer: &Blob) -> Blob {
    manifest(config, std::slice::from_ref(layer))
}

fn platform_entry(manifest: &Blob, arch: &str) -> serde_json::Value {
    let mut d = manifest.descriptor();
    d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
    d
}

impl TestImage {
    /// Every blob by digest (manifests included), as a registry or an OCI layout holds them.
    pub fn blobs(&self) -> BTreeMap<String, Blob> {
        let mut all = BTreeMap::new();
        for b in [&self.index, &self.manifest, &self.config]
            .into_iter()
            .chain(&self.layers)
            .chain(&self.decoy)
        {
            all.insert(b.digest.clone(), b.clone());
        }
        all
    }

    /// An OCI archive (`oci-layout`, `index.json`, `blobs/sha256/...`) as a tar, whose index
    /// names the image's index.
    pub fn oci_archive(&self) -> Vec<u8> {
        oci_archive_of(&[(self, "latest")])
    }

    /// What `docker save REPO:latest` writes (the format before Docker 25): `manifest.json`,
    /// the config as `<hex>.json`, and each layer uncompressed as `<id>/layer.tar`.
    pub fn docker_save(&self, repo_tag: &str) -> Vec<u8> {
        let config_name = format!("{}.json", hex(&self.config.digest));
        let ids: Vec<String> = self.tars.iter().map(|t| hex(&sha256(t)).to_string()).collect();
        let layers: Vec<String> = ids.iter().map(|id| format!("{id}/layer.tar")).collect();
        let manifest = serde_json::json!([{
            "Config": config_name,
            "RepoTags": [repo_tag],
            "Layers": layers,
        }]);
        let mut tar = LayerTar::new().file(&config_name, 0o644, &self.config.bytes);
        for (id, bytes) in ids.iter().zip(&self.tars) {
            tar = tar
                .dir(id, 0o755)
                .file(&format!("{id}/VERSION"), 0o644, b"1.0")
                .file(&format!("{id}/layer.tar"), 0o644, bytes);
        }
        tar.file("manifest.json", 0o644, &serde_json::to_vec(&manifest).unwrap())
            .tar()
    }
}

/// Counts of the requests a [`Registry`] answered.
#[derive(Default)]
struct Counts {
    token: AtomicUsize,
    manifests: AtomicUsize,
    blobs: AtomicUsize,
    unauthorized: AtomicUsize,
}

const TOKEN: &str = "test-token-7b1f";
const SERVICE: &str = "shipway-test-registry";

/// A registry on 127.0.0.1 serving one repository's `latest` through the distribution API,
/// behind a bearer-token challenge. Stopped on drop.
pub struct Registry {
    pub url: String,
    counts: Arc<Counts>,
    corrupt: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

struct Served {
    repository: String,
    tag_digest: String,
    blobs: BTreeMap<String, Blob>,
    port: u16,
}

impl Registry {
    /// Serve `image` as `<repository>:latest` (e.g. `scalingo/scalingo-26`).
    pub fn serve(repository: &str, image: &TestImage) -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(Served {
            repository: repository.to_string(),
            tag_digest: image.index.digest.clone(),
            blobs: image.blobs(),
            port: addr.port(),
        });
        let counts = Arc::new(Counts::default());
        let corrupt = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (counts, corrupt, stop) = (counts.clone(), corrupt.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (served, counts, corrupt) = (served.clone(), counts.clone(), corrupt.clone());
                    std::thread::spawn(move || {
                        let _ = answer(conn, &served, &counts, &corrupt);
                    });
                }
            })
        };
        Registry {
            url: format!("http://127.0.0.1:{}", addr.port()),
            counts,
            corrupt,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    pub fn blob_requests(&self) -> usize {
        self.counts.blobs.load(Ordering::SeqCst)
    }

    pub fn manifest_requests(&self) -> usize {
        self.counts.manifests.load(Ordering::SeqCst)
    }

    pub fn token_requests(&self) -> usize {
        self.counts.token.load(Ordering::SeqCst)
    }

    pub fn unauthorized(&self) -> usize {
        self.counts.unauthorized.load(Ordering::SeqCst)
    }

    /// Serve `digest`'s blob with one byte changed from now on.
    pub fn corrupt(&self, digest: &str) {
        *self.corrupt.lock().unwrap() = Some(digest.to_string());
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answer the requests of one connection (keep-alive), until it closes.
fn answer(
    conn: TcpStream,
    served: &Served,
    counts: &Counts,
    corrupt: &Mutex<Option<String>>,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut authorized = false;
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 {
                return Ok(());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap_or((header, ""));
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "authorization" => authorized = value == format!("Bearer {TOKEN}"),
                "content-length" => length = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let head = method == "HEAD";
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let v2 = format!("/v2/{}/", served.repository);

        if path == "/token" {
            counts.token.fetch_add(1, Ordering::SeqCst);
            let scope = format!(
                "scope=repository%3A{}%3Apull",
                served.repository.replace('/', "%2F")
            );
            let plain_scope = format!("scope=repository:{}:pull", served.repository);
            let service = format!("service={SERVICE}");
            if !query.contains(&service) || !(query.contains(&scope) || query.contains(&plain_scope)) {
                respond(&mut out, 400, &[], b"{\"errors\":[{\"code\":\"DENIED\"}]}", head)?;
                continue;
            }
            let body = format!("{{\"token\":\"{TOKEN}\",\"expires_in\":300}}");
            respond(
                &mut out,
                200,
                &[("Content-Type", "application/json")],
                body.as_bytes(),
                head,
            )?;
            continue;
        }
        if !path.starts_with("/v2/") {
            respond(&mut out, 404, &[], b"", head)?;
            continue;
        }
        if !authorized {
            counts.unauthorized.fetch_add(1, Ordering::SeqCst);
            let challenge = format!(
                "Bearer realm=\"http://127.0.0.1:{}/token\",service=\"{SERVICE}\",scope=\"repository:{}:pull\"",
                served.port, served.repository
            );
            respond(
                &mut out,
                401,
                &[
                    ("WWW-Authenticate", &challenge),
                    ("Content-Type", "application/json"),
                ],
                b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
                head,
            )?;
            continue;
        }
        if path == "/v2/" {
            respond(
                &mut out,
                200,
                &[("Content-Type", "application/json")],
                b"{}",
                head,
            )?;
        } else if let Some(reference) = path.strip_prefix(&v2).and_then(|r| r.strip_prefix("manifests/")) {
            counts.manifests.fetch_add(1, Ordering::SeqCst);
            let digest = if reference == "latest" {
                served.tag_digest.clone()
            } else {
                reference.to_string()
            };
            match served.blobs.get(&digest) {
                Some(blob) if blob.media_type == MANIFEST || blob.media_type == INDEX => {
                    let headers = [
                        ("Content-Type", blob.media_type.as_str()),
                        ("Docker-Content-Digest", blob.digest.as_str()),
                    ];
                    respond(&mut out, 200, &headers, &blob.bytes, head)?;
                }
                _ => respond(
                    &mut out,
                    404,
                    &[],
                    b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\"}]}",
                    head,
                )?,
            }
        } else if let Some(digest) = path.strip_prefix(&v2).and_then(|r| r.strip_prefix("blobs/")) {
            counts.blobs.fetch_add(1, Ordering::SeqCst);
            match served.blobs.get(digest) {
                Some(blob) => {
                    let mut bytes = blob.bytes.clone();
                    if corrupt.lock().unwrap().as_deref() == Some(digest) {
                        let middle = bytes.len() / 2;
                        bytes[middle] ^= 0x5a;
                    }
                    respond(
                        &mut out,
                        200,
                        &[("Content-Type", "application/octet-stream")],
                        &bytes,
                        head,
                    )?;
                }
                None => respond(
                    &mut out,
                    404,
                    &[],
                    b"{\"errors\":[{\"code\":\"BLOB_UNKNOWN\"}]}",
                    head,
                )?,
            }
        } else {
            respond(
                &mut out,
                404,
                &[],
                b"{\"errors\":[{\"code\":\"NAME_UNKNOWN\"}]}",
                head,
            )?;
        }
    }
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Not Found",
    };
    let mut text = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    out.write_all(text.as_bytes())?;
    if !head {
        out.write_all(body)?;
    }
    out.flush()
}

/// An OCI archive of several images, each named in its index.json as Docker 25's
/// `docker save` names them (`io.containerd.image.name`, plus the OCI `ref.name`).
pub fn oci_archive_of(images: &[(&TestImage, &str)]) -> Vec<u8> {
    let layout = serde_json::json!({"imageLayoutVersion": "1.0.0"});
    let entries: Vec<serde_json::Value> = images
        .iter()
        .map(|(image, name)| {
            serde_json::json!({
                "mediaType": INDEX,
                "digest": image.index.digest,
                "size": image.index.bytes.len(),
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": "latest",
                },
            })
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
    let mut tar = LayerTar::new()
        .file("oci-layout", 0o644, &serde_json::to_vec(&layout).unwrap())
        .file("index.json", 0o644, &serde_json::to_vec(&index).unwrap())
        .dir("blobs", 0o755)
        .dir("blobs/sha256", 0o755);
    let mut all = BTreeMap::new();
    for (image, _) in images {
        all.extend(image.blobs());
    }
    for (digest, blob) in all {
        tar = tar.file(&format!("blobs/sha256/{}", hex(&digest)), 0o644, &blob.bytes);
    }
    tar.tar()
}
