//! A real S3 engine for the tests: one SeaweedFS (`weed mini`) per test process, started on
//! 127.0.0.1 by `scripts/seaweedfs.sh` (which builds it once into a cache) and stopped when the
//! process ends; a fresh bucket per test; and a small client to look inside it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

pub const ACCESS_KEY: &str = "knsock-test";
pub const SECRET_KEY: &str = "knsock-test-secret";
/// An identity that may read and list, not write (scripts/seaweedfs.sh makes it).
pub const READONLY_KEY: &str = "knsock-readonly";
pub const READONLY_SECRET: &str = "knsock-readonly-secret";

/// The engine of this test process.
pub struct Weed {
    pub endpoint: String,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The engine at `KNSOCK_S3_ENDPOINT`, or one started on first use that stops when this
/// process exits (the script watches it).
pub fn weed() -> &'static Weed {
    static WEED: OnceLock<Weed> = OnceLock::new();
    WEED.get_or_init(|| {
        // An engine the caller runs already (scripts/test.sh starts one for every suite).
        if let Ok(endpoint) = std::env::var("KNSOCK_S3_ENDPOINT") {
            return Weed { endpoint };
        }
        // A static is never dropped, so a TempDir here would never remove its directory: the
        // script's watcher removes it with the engine once this process has exited.
        let data = tempfile::tempdir().unwrap().keep();
        let out = Command::new(repo().join("scripts/seaweedfs.sh"))
            .arg("start")
            .arg(&data)
            .env("KNSOCK_WEED_WATCH_PID", std::process::id().to_string())
            .output()
            .expect("running scripts/seaweedfs.sh");
        assert!(
            out.status.success(),
            "scripts/seaweedfs.sh start failed (run scripts/install-deps.sh once):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let endpoint = std::fs::read_to_string(data.join("endpoint")).unwrap();
        Weed {
            endpoint: endpoint.trim().to_string(),
        }
    })
}

/// The bucket the tests of this process share: `KNSOCK_S3_BUCKET` when the caller made one,
/// else `knsock-rust`, made once. (A bucket per test would exhaust the engine's volumes: each
/// bucket is a collection with volumes of its own.)
fn shared_bucket() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let name = std::env::var("KNSOCK_S3_BUCKET").unwrap_or_else(|_| "knsock-rust".into());
        let b = Client::new(&name);
        let url = b
            .bucket
            .create_bucket(&b.creds)
            .sign(Duration::from_secs(60));
        let status = b.agent.put(url.as_str()).send_empty().unwrap().status();
        // 409: it exists already (another test process made it).
        assert!(
            status == 200 || status == 409,
            "creating bucket {name}: {status}"
        );
        name
    })
}

/// Signs and sends requests to one bucket of the engine.
struct Client {
    bucket: Bucket,
    creds: Credentials,
    agent: ureq::Agent,
}

impl Client {
    fn new(name: &str) -> Client {
        let url = weed().endpoint.parse().unwrap();
        Client {
            bucket: Bucket::new(url, UrlStyle::Path, name.to_string(), "us-east-1").unwrap(),
            creds: Credentials::new(ACCESS_KEY, SECRET_KEY),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }
}

/// A key prefix of its own for one test, in the shared bucket: every key and upload it reports
/// is relative to that prefix.
pub struct TestBucket {
    pub name: String,
    root: String,
    client: Client,
}

impl TestBucket {
    pub fn new(test: &str) -> TestBucket {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = shared_bucket().to_string();
        TestBucket {
            root: format!("{test}-{}-{n}/", std::process::id()),
            client: Client::new(&name),
            name,
        }
    }

    /// `s3://BUCKET/ROOT/prefix`, for the command line.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}{prefix}", self.name, self.root)
    }

    /// The configuration a receiver uses to store into this test's keys under `prefix`.
    pub fn config(&self, prefix: &str) -> knsock::S3Config {
        knsock::S3Config {
            endpoint: Some(weed().endpoint.clone()),
            region: Some("us-east-1".into()),
            bucket: self.name.clone(),
            prefix: format!("{}{prefix}", self.root),
            access_key: Some(ACCESS_KEY.into()),
            secret_key: Some(SECRET_KEY.into()),
            path_style: true,
            ..knsock::S3Config::default()
        }
    }

    pub fn store(&self, prefix: &str) -> Arc<knsock::S3Store> {
        Arc::new(knsock::S3Store::open(&self.config(prefix)).unwrap())
    }

    /// Every key of this test, sorted, relative to its prefix.
    pub fn keys(&self) -> Vec<String> {
        let c = &self.client;
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = c.bucket.list_objects_v2(Some(&c.creds));
            action.with_prefix(self.root.clone());
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(Duration::from_secs(60));
            let mut response = c.agent.get(url.as_str()).call().unwrap();
            assert_eq!(response.status(), 200);
            let body = response.body_mut().read_to_string().unwrap();
            let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&body).unwrap();
            keys.extend(
                parsed
                    .contents
                    .into_iter()
                    .map(|o| o.key[self.root.len()..].to_string()),
            );
            match parsed.next_continuation_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        keys.sort();
        keys
    }

    /// The content of this test's object `key`, or `None` when there is none.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let c = &self.client;
        let full = format!("{}{key}", self.root);
        let url = c
            .bucket
            .get_object(Some(&c.creds), &full)
            .sign(Duration::from_secs(60));
        let mut response = c.agent.get(url.as_str()).call().unwrap();
        match response.status().as_u16() {
            404 => None,
            200 => Some(
                response
                    .body_mut()
                    .with_config()
                    .limit(u64::MAX)
                    .read_to_vec()
                    .unwrap(),
            ),
            s => panic!("GET {full}: HTTP {s}"),
        }
    }

    /// Stores `data` as this test's object `key`, as another writer would.
    pub fn put(&self, key: &str, data: &[u8]) {
        let c = &self.client;
        let url = c
            .bucket
            .put_object(Some(&c.creds), &format!("{}{key}", self.root))
            .sign(Duration::from_secs(60));
        let status = c.agent.put(url.as_str()).send(data).unwrap().status();
        assert_eq!(status, 200, "PUT {key}");
    }

    /// Keys of this test's unfinished multipart uploads, relative to its prefix.
    pub fn uploads(&self) -> Vec<String> {
        let found = self.store("").unfinished_uploads().unwrap();
        found
            .into_iter()
            .map(|(key, _)| key[self.root.len()..].to_string())
            .collect()
    }
}

/// The environment a receiver process storing in the test engine needs.
pub fn store_env(cmd: &mut Command) {
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_ENDPOINT_URL", &weed().endpoint);
}

/// A TCP forwarder to the engine that can be cut off: then nothing gets through and new
/// connections are refused, as when a store becomes unreachable.
pub struct Forwarder {
    pub endpoint: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    addr: std::net::SocketAddr,
    refusing: std::sync::Mutex<Option<socket2::Socket>>,
}

impl Forwarder {
    pub fn start() -> Forwarder {
        use std::net::{TcpListener, TcpStream};
        let target: std::net::SocketAddr = weed()
            .endpoint
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
        let (s, c) = (Arc::clone(&stop), Arc::clone(&conns));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(std::sync::atomic::Ordering::SeqCst) {
                    return; // the listener goes with this thread
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let mut held = c.lock().unwrap();
                held.push(client.try_clone().unwrap());
                held.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Forwarder {
            endpoint: format!("http://{addr}"),
            stop,
            conns,
            addr,
            refusing: std::sync::Mutex::new(None),
        }
    }

    /// Cuts every connection and refuses new ones from now on.
    pub fn cut(&self) {
        use socket2::{Domain, Socket, Type};
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it ends and its listener closes.
        let _ = std::net::TcpStream::connect(self.addr);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Hold the port, bound and never listening, until the test ends: connections to it
        // are refused. (The cut connections still hold the port as theirs: reuse it.)
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        let deadline = std::time::Instant::now() + super::EVENT_TIMEOUT;
        while socket.bind(&self.addr.into()).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the forwarder's port stays taken"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        *self.refusing.lock().unwrap() = Some(socket);
    }
}
