//! Decoding a `/v2/keys` request as etcd does: parameters from the form
//! body (form-encoded PUT/POST/DELETE) before the query string, Go's
//! boolean spellings, and etcd's error for each malformed field.

use axum::http::{header, HeaderMap, Method, Uri};
use concord_core::v2::{Code, V2Error};

/// A decoded `/v2/keys` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRequest {
    /// The key, as sent (the store cleans it).
    pub path: String,
    pub value: Option<String>,
    pub dir: bool,
    pub recursive: bool,
    pub sorted: bool,
    pub wait: bool,
    pub wait_index: u64,
    pub quorum: bool,
    pub stream: bool,
    pub prev_value: Option<String>,
    pub prev_index: u64,
    pub prev_exist: Option<bool>,
    pub ttl: Option<u64>,
    pub refresh: bool,
    pub no_value_on_success: bool,
}

/// The parameters, body first (as Go's `Request.FormValue` sees them).
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// Go's `strconv.ParseBool`; absent or empty is false.
    fn bool(&self, name: &str, quoted: bool) -> Result<bool, V2Error> {
        match self.get(name).unwrap_or("") {
            "" => Ok(false),
            v => parse_bool(v).ok_or_else(|| {
                let cause = if quoted {
                    format!("invalid value for {name:?}")
                } else {
                    format!("invalid value for {name}")
                };
                V2Error::request(Code::InvalidField, cause)
            }),
        }
    }

    fn uint(&self, name: &str, code: Code) -> Result<Option<u64>, V2Error> {
        match self.get(name).unwrap_or("") {
            "" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|_| V2Error::request(code, format!("invalid value for {name:?}"))),
        }
    }
}

/// Go's check of a form's escapes: every `%` starts two hex digits.
fn check_escapes(s: &[u8]) -> Result<(), V2Error> {
    for (i, &b) in s.iter().enumerate() {
        if b == b'%' {
            let esc = &s[i..s.len().min(i + 3)];
            if esc.len() < 3 || !esc[1].is_ascii_hexdigit() || !esc[2].is_ascii_hexdigit() {
                let shown = String::from_utf8_lossy(esc);
                return Err(V2Error::request(
                    Code::InvalidForm,
                    format!("invalid URL escape {shown:?}"),
                ));
            }
        }
    }
    Ok(())
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The key path after `/v2/keys`, unescaped.
fn key_path(uri: &Uri) -> Result<String, V2Error> {
    let raw = uri.path().strip_prefix("/v2/keys").unwrap_or("");
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|p| if p.is_empty() { "/".to_string() } else { p.into_owned() })
        .map_err(|_| V2Error::request(Code::InvalidForm, "the key is not valid UTF-8"))
}

/// Go's `path.Clean`, keeping a trailing slash as Go's router does.
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut c = format!("/{}", out.join("/"));
    if p.ends_with('/') && c != "/" {
        c.push('/');
    }
    c
}

/// Where Go's router would redirect `uri` (its unescaped path not clean),
/// with the query kept; `None` if the path is clean.
pub fn unclean(uri: &Uri) -> Option<String> {
    let path = percent_encoding::percent_decode_str(uri.path()).decode_utf8().ok()?;
    let c = clean(&path);
    if c == path {
        return None;
    }
    const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}');
    let mut to = percent_encoding::utf8_percent_encode(&c, PATH).to_string();
    if let Some(q) = uri.query() {
        to.push('?');
        to.push_str(q);
    }
    Some(to)
}

impl KeyRequest {
    /// Decodes a request, or answers etcd's error for its first bad field.
    pub fn parse(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<KeyRequest, V2Error> {
        let form_body = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        let mut params: Vec<(String, String)> = Vec::new();
        if form_body && [Method::PUT, Method::POST, Method::PATCH].contains(method) {
            check_escapes(body)?;
            params.extend(form_urlencoded::parse(body).into_owned());
        }
        let query = uri.query().unwrap_or("").as_bytes();
        check_escapes(query)?;
        params.extend(form_urlencoded::parse(query).into_owned());
        let f = Form(params);
        let prev_index = f.uint("prevIndex", Code::IndexNaN)?.unwrap_or(0);
        let wait_index = f.uint("waitIndex", Code::IndexNaN)?.unwrap_or(0);
        let recursive = f.bool("recursive", true)?;
        let sorted = f.bool("sorted", true)?;
        let wait = f.bool("wait", true)?;
        let dir = f.bool("dir", true)?;
        let quorum = f.bool("quorum", true)?;
        let stream = f.bool("stream", true)?;
        if wait && method != Method::GET && method != Method::HEAD {
            return Err(V2Error::request(
                Code::InvalidField,
                "\"wait\" can only be used with GET requests",
            ));
        }
        if f.has("prevValue") && f.get("prevValue") == Some("") {
            return Err(V2Error::request(
                Code::PrevValueRequired,
                "\"prevValue\" cannot be empty",
            ));
        }
        let no_value_on_success = f.bool("noValueOnSuccess", true)?;
        let ttl = f.uint("ttl", Code::TtlNaN)?;
        let prev_exist = match f.get("prevExist").unwrap_or("") {
            "" => None,
            v => {
                Some(parse_bool(v).ok_or_else(|| V2Error::request(Code::InvalidField, "invalid value for prevExist"))?)
            }
        };
        let refresh = f.bool("refresh", true)?;
        let value = f.get("value").map(str::to_string);
        if refresh {
            if value.as_deref().is_some_and(|v| !v.is_empty()) {
                return Err(V2Error::request(
                    Code::RefreshValue,
                    "A value was provided on a refresh",
                ));
            }
            if ttl.is_none() {
                return Err(V2Error::request(Code::RefreshTtlRequired, "No TTL value set"));
            }
        }
        Ok(KeyRequest {
            path: key_path(uri)?,
            value,
            dir,
            recursive,
            sorted,
            wait,
            wait_index,
            quorum,
            stream,
            prev_value: f.get("prevValue").map(str::to_string),
            prev_index,
            prev_exist,
            ttl,
            refresh,
            no_value_on_success,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: Method, uri: &str, body: &str) -> Result<KeyRequest, (u32, String)> {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        KeyRequest::parse(&method, &uri.parse().unwrap(), &h, body.as_bytes()).map_err(|e| (e.code.number(), e.cause))
    }

    #[test]
    fn unclean_paths_redirect_as_gos_router_does() {
        let u = |s: &str| unclean(&s.parse().unwrap());
        assert_eq!(u("/v2/keys/%2Fmessy//path/./x"), Some("/v2/keys/messy/path/x".into()));
        assert_eq!(u("/v2/keys/a/../b/?x=1"), Some("/v2/keys/b/?x=1".into()));
        assert_eq!(u("/v2/keys/a%20b/"), None);
        assert_eq!(u("/v2/keys"), None);
    }

    #[test]
    fn fields_and_etcds_errors() {
        let r = parse(Method::PUT, "/v2/keys/a%20b/c?ttl=5&value=q", "value=b&prevExist=TRUE").unwrap();
        assert_eq!(
            (r.path.as_str(), r.value.as_deref(), r.ttl, r.prev_exist),
            ("/a b/c", Some("b"), Some(5), Some(true))
        );
        assert_eq!(parse(Method::GET, "/v2/keys", "").unwrap().path, "/");
        assert_eq!(
            parse(Method::GET, "/v2/keys/q?recursive=maybe", ""),
            Err((209, "invalid value for \"recursive\"".into()))
        );
        assert_eq!(
            parse(Method::GET, "/v2/keys/q?wait=true&waitIndex=x", ""),
            Err((203, "invalid value for \"waitIndex\"".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/x?prevExist=maybe", ""),
            Err((209, "invalid value for prevExist".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/x?prevValue=", "value=1"),
            Err((201, "\"prevValue\" cannot be empty".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/t?ttl=abc", "value=1"),
            Err((202, "invalid value for \"ttl\"".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/t?refresh=true&ttl=5", "value=1"),
            Err((211, "A value was provided on a refresh".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/t?refresh=true", ""),
            Err((212, "No TTL value set".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/x", "value=%zz"),
            Err((210, "invalid URL escape \"%zz\"".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/x?value=%4", ""),
            Err((210, "invalid URL escape \"%4\"".into()))
        );
        assert_eq!(
            parse(Method::PUT, "/v2/keys/x?wait=true", "value=1"),
            Err((209, "\"wait\" can only be used with GET requests".into()))
        );
        // A GET's body is not a form.
        assert_eq!(parse(Method::GET, "/v2/keys/t", "value=1").unwrap().value, None);
    }
}
