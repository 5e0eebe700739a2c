//! Lease churn: grant, one keep-alive, revoke.

use super::{connect, drive, Error, Shape};
use crate::stats::Samples;

pub async fn churn(shape: &Shape) -> Result<(Samples, f64), Error> {
    let conns = connect(shape).await?;
    Ok(drive(shape, move |c, _| {
        let mut client = conns[c % conns.len()].clone();
        async move {
            let Ok(grant) = client.lease_grant(60, None).await else {
                return false;
            };
            let id = grant.id();
            let Ok((mut keeper, mut stream)) = client.lease_keep_alive(id).await else {
                return false;
            };
            if keeper.keep_alive().await.is_err() {
                return false;
            }
            let renewed = matches!(stream.message().await, Ok(Some(r)) if r.ttl() > 0);
            renewed && client.lease_revoke(id).await.is_ok()
        }
    })
    .await)
}
