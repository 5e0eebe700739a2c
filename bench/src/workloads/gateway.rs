//! JSON gateway workloads over plain HTTP/1.1 with keep-alive (reqwest).

use base64::Engine;

use super::{drive, key, Error, Rng, Shape};
use crate::stats::Samples;

use super::grpc::RANGE_KEYS;

fn clients(shape: &Shape) -> Result<Vec<reqwest::Client>, Error> {
    (0..shape.conns.max(1))
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(shape.clients)
                .build()
                .map_err(Into::into)
        })
        .collect()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

async fn post(http: &reqwest::Client, url: &str, body: String) -> bool {
    match http
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// `POST /v3/kv/put` of random keys.
pub async fn put(shape: &Shape) -> Result<(Samples, f64), Error> {
    let https = clients(shape)?;
    let urls: Vec<String> = (0..https.len())
        .map(|i| format!("http://{}/v3/kv/put", shape.endpoint(i)))
        .collect();
    let value = b64(&vec![b'v'; shape.val_size]);
    let (size, space) = (shape.key_size, shape.key_space);
    Ok(drive(shape, move |c, n| {
        let (http, url) = (https[c % https.len()].clone(), urls[c % urls.len()].clone());
        let value = value.clone();
        async move {
            let k = key("", Rng::new(c as u64 * 1_000_003 + n).below(space), size);
            post(&http, &url, format!(r#"{{"key":"{}","value":"{value}"}}"#, b64(&k))).await
        }
    })
    .await)
}

/// `POST /v3/kv/range` of one random preloaded key.
pub async fn range(shape: &Shape) -> Result<(Samples, f64), Error> {
    let https = clients(shape)?;
    let urls: Vec<String> = (0..https.len())
        .map(|i| format!("http://{}/v3/kv/range", shape.endpoint(i)))
        .collect();
    let size = shape.key_size;
    Ok(drive(shape, move |c, n| {
        let (http, url) = (https[c % https.len()].clone(), urls[c % urls.len()].clone());
        async move {
            let k = key("r", Rng::new(c as u64 * 7919 + n).below(RANGE_KEYS), size);
            post(&http, &url, format!(r#"{{"key":"{}"}}"#, b64(&k))).await
        }
    })
    .await)
}
