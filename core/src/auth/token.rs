//! Auth tokens, etcd's two kinds (`--auth-token`):
//! - `simple`: random strings kept in this member's memory, each with a
//!   TTL (`--auth-token-ttl`, default 300 s) that every use renews;
//! - `jwt`: signed JSON Web Tokens (RS256/384/512, PS256/384/512,
//!   ES256/384) carrying etcd's claims (`username`, `revision`, `exp`),
//!   checkable by any member holding the public key.
//!
//! A token names a user and the auth revision it was issued at.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Why a token configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `--auth-token` names an unknown kind or option.
    #[error("invalid --auth-token {0:?}: {1}")]
    Spec(String, String),
    /// A key file could not be read or parsed.
    #[error("auth token key {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Who a token stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The user.
    pub user: String,
    /// The auth revision at issue.
    pub revision: u64,
}

struct SimpleEntry {
    info: TokenInfo,
    expires: Instant,
}

struct Jwt {
    alg: Algorithm,
    encode: EncodingKey,
    decode: DecodingKey,
    ttl: Duration,
}

/// etcd's JWT claims.
#[derive(Serialize, Deserialize)]
struct Claims {
    username: String,
    revision: u64,
    exp: u64,
}

enum Kind {
    Simple {
        ttl: Duration,
        tokens: Mutex<HashMap<String, SimpleEntry>>,
    },
    Jwt(Box<Jwt>),
}

/// The member's token issuer and checker.
pub struct Tokens {
    kind: Kind,
    counter: AtomicU64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Simple { .. } => "simple",
            Kind::Jwt(_) => "jwt",
        };
        f.debug_struct("Tokens").field("kind", &kind).finish()
    }
}

fn read_key(path: &PathBuf) -> Result<Vec<u8>, TokenError> {
    std::fs::read(path).map_err(|e| TokenError::Key {
        path: path.clone(),
        reason: e.to_string(),
    })
}

fn parse_ttl(s: &str) -> Option<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    match unit {
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n * 60)),
        "h" => Some(Duration::from_secs(n * 3600)),
        "ms" => Some(Duration::from_millis(n)),
        _ => None,
    }
}

fn random_letters(n: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS provides randomness");
    b.iter().map(|x| LETTERS[*x as usize % LETTERS.len()] as char).collect()
}

impl Tokens {
    /// Simple tokens living `ttl` after their last use.
    pub fn simple(ttl: Duration) -> Tokens {
        Tokens {
            kind: Kind::Simple {
                ttl,
                tokens: Mutex::new(HashMap::new()),
            },
            counter: AtomicU64::new(0),
        }
    }

    /// Tokens as `--auth-token` describes them: `simple`, or
    /// `jwt,pub-key=PATH,priv-key=PATH,sign-method=RS256[,ttl=5m]`.
    /// `simple_ttl` is `--auth-token-ttl`.
    pub fn from_spec(spec: &str, simple_ttl: Duration) -> Result<Tokens, TokenError> {
        let bad = |why: &str| TokenError::Spec(spec.to_string(), why.to_string());
        let mut parts = spec.split(',');
        match parts.next().map(str::trim) {
            Some("simple") | Some("") | None => Ok(Tokens::simple(simple_ttl)),
            Some("jwt") => {
                let (mut public, mut private, mut method, mut ttl) = (None, None, None, Duration::from_secs(300));
                for p in parts {
                    let (k, v) = p.split_once('=').ok_or_else(|| bad("options are key=value"))?;
                    match k.trim() {
                        "pub-key" => public = Some(PathBuf::from(v.trim())),
                        "priv-key" => private = Some(PathBuf::from(v.trim())),
                        "sign-method" => method = Some(v.trim().to_string()),
                        "ttl" => ttl = parse_ttl(v.trim()).ok_or_else(|| bad("ttl is like 5m, 300s, 1h"))?,
                        other => return Err(bad(&format!("unknown option {other}"))),
                    }
                }
                let method = method.ok_or_else(|| bad("sign-method is required"))?;
                let alg: Algorithm = method.parse().map_err(|_| bad("unknown sign-method"))?;
                let (public, private) = (
                    public.ok_or_else(|| bad("pub-key is required"))?,
                    private.ok_or_else(|| bad("priv-key is required"))?,
                );
                let (pub_pem, priv_pem) = (read_key(&public)?, read_key(&private)?);
                let key_err = |path: &PathBuf| {
                    let path = path.clone();
                    move |e: jsonwebtoken::errors::Error| TokenError::Key {
                        path,
                        reason: e.to_string(),
                    }
                };
                let (encode, decode) = match alg {
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512 => (
                        EncodingKey::from_rsa_pem(&priv_pem).map_err(key_err(&private))?,
                        DecodingKey::from_rsa_pem(&pub_pem).map_err(key_err(&public))?,
                    ),
                    Algorithm::ES256 | Algorithm::ES384 => (
                        EncodingKey::from_ec_pem(&priv_pem).map_err(key_err(&private))?,
                        DecodingKey::from_ec_pem(&pub_pem).map_err(key_err(&public))?,
                    ),
                    _ => return Err(bad("sign-method must be RS*, PS* or ES256/ES384")),
                };
                Ok(Tokens {
                    kind: Kind::Jwt(Box::new(Jwt {
                        alg,
                        encode,
                        decode,
                        ttl,
                    })),
                    counter: AtomicU64::new(0),
                })
            }
            Some(other) => Err(bad(&format!("unknown token kind {other}"))),
        }
    }

    /// A new token for `user` at auth revision `revision`.
    pub fn assign(&self, user: &str, revision: u64) -> String {
        let info = TokenInfo {
            user: user.to_string(),
            revision,
        };
        match &self.kind {
            Kind::Simple { ttl, tokens } => {
                let n = self.counter.fetch_add(1, Ordering::Relaxed) + 1;
                let token = format!("{}.{n}", random_letters(16));
                let mut map = tokens.lock();
                let now = Instant::now();
                map.retain(|_, e| e.expires > now);
                map.insert(
                    token.clone(),
                    SimpleEntry {
                        info,
                        expires: now + *ttl,
                    },
                );
                token
            }
            Kind::Jwt(j) => {
                let exp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .saturating_add(j.ttl)
                    .as_secs();
                let claims = Claims {
                    username: info.user,
                    revision,
                    exp,
                };
                jsonwebtoken::encode(&Header::new(j.alg), &claims, &j.encode).expect("a loaded key signs")
            }
        }
    }

    /// Who `token` stands for; `None` if it is unknown, expired or forged.
    /// A simple token's TTL starts over with each use.
    pub fn info(&self, token: &str) -> Option<TokenInfo> {
        match &self.kind {
            Kind::Simple { ttl, tokens } => {
                let mut map = tokens.lock();
                let now = Instant::now();
                let e = map.get_mut(token)?;
                if e.expires <= now {
                    map.remove(token);
                    return None;
                }
                e.expires = now + *ttl;
                Some(e.info.clone())
            }
            Kind::Jwt(j) => {
                let mut v = Validation::new(j.alg);
                v.leeway = 0;
                v.set_required_spec_claims(&["exp"]);
                let data = jsonwebtoken::decode::<Claims>(token, &j.decode, &v).ok()?;
                Some(TokenInfo {
                    user: data.claims.username,
                    revision: data.claims.revision,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_tokens_expire_unless_used() {
        let t = Tokens::simple(Duration::from_millis(200));
        let a = t.assign("alice", 3);
        assert_eq!(
            t.info(&a),
            Some(TokenInfo {
                user: "alice".into(),
                revision: 3
            })
        );
        assert!(t.info("nope").is_none());
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(120));
            assert!(t.info(&a).is_some(), "each use renews the TTL");
        }
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.info(&a).is_none());
        assert_ne!(t.assign("alice", 3), t.assign("alice", 3));
    }

    #[test]
    fn specs() {
        assert!(Tokens::from_spec("simple", Duration::from_secs(1)).is_ok());
        assert!(Tokens::from_spec("magic", Duration::from_secs(1)).is_err());
        assert!(Tokens::from_spec("jwt,sign-method=RS256", Duration::from_secs(1)).is_err());
        assert_eq!(parse_ttl("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_ttl("5x"), None);
    }
}
