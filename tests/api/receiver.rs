//! A webhook receiver on loopback for the delivery tests: it records what arrives and answers
//! as told (fail the first N requests, or hang before answering: every request, or only those
//! whose body holds a given text).

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub json: Value,
}

#[derive(Clone)]
struct Shared {
    fail_first: usize,
    hang: Option<Duration>,
    /// Hang only on bodies that hold this text.
    hang_only_on: Option<String>,
    seen: Arc<AtomicUsize>,
    completed: Arc<AtomicUsize>,
    tx: tokio::sync::mpsc::UnboundedSender<Received>,
}

pub struct Receiver {
    pub url: String,
    pub rx: tokio::sync::mpsc::UnboundedReceiver<Received>,
    pub completed: Arc<AtomicUsize>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let h = self.handle.clone();
        actix_web::rt::spawn(async move { h.stop(false).await });
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, s: web::Data<Shared>) -> HttpResponse {
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let r = Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        body: text,
    };
    let n = s.seen.fetch_add(1, Ordering::SeqCst);
    let _ = s.tx.send(r.clone());
    let hangs = s
        .hang_only_on
        .as_deref()
        .is_none_or(|text| r.body.contains(text));
    if let Some(d) = s.hang.filter(|_| hangs) {
        actix_web::rt::time::sleep(d).await;
    }
    s.completed.fetch_add(1, Ordering::SeqCst);
    if n < s.fail_first {
        return HttpResponse::InternalServerError().body("receiver is failing on purpose");
    }
    HttpResponse::Ok().body("ok")
}

/// Starts a receiver on `listener` (or a new loopback port).
pub fn start(listener: Option<TcpListener>, fail_first: usize, hang: Option<Duration>) -> Receiver {
    start_with(listener, fail_first, hang, None)
}

/// Starts a receiver that hangs for `hang` before answering a request whose body holds `text`,
/// and answers the others at once.
pub fn start_hanging_on(text: &str, hang: Duration) -> Receiver {
    start_with(None, 0, Some(hang), Some(text.to_string()))
}

fn start_with(
    listener: Option<TcpListener>,
    fail_first: usize,
    hang: Option<Duration>,
    hang_only_on: Option<String>,
) -> Receiver {
    let listener = listener.unwrap_or_else(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let completed = Arc::new(AtomicUsize::new(0));
    let shared = Shared {
        fail_first,
        hang,
        hang_only_on,
        seen: Arc::new(AtomicUsize::new(0)),
        completed: completed.clone(),
        tx,
    };
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(shared.clone()))
            .route("/hooks", web::post().to(receive))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Receiver {
        url,
        rx,
        completed,
        handle,
    }
}

impl Receiver {
    /// The next request, waiting at most `secs` seconds.
    pub async fn next(&mut self, secs: u64) -> Received {
        tokio::time::timeout(Duration::from_secs(secs), self.rx.recv())
            .await
            .expect("a webhook arrived in time")
            .expect("the receiver is running")
    }
}

/// Checks a Standard Webhooks signature the way a vendor's app would.
pub fn signature_valid(secret: &str, r: &Received) -> bool {
    let ts: i64 = r.timestamp.parse().unwrap_or(0);
    roster::events::sign(secret, &r.id, ts, &r.body).is_some_and(|s| s == r.signature)
}
