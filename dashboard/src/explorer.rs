//! The explorer: calls an RPC of the contract over Connect JSON, as anyone,
//! as the demo customer or as a customer made for the occasion, and
//! answers with what came back, the trace the call made, and the same call
//! as `curl`, `grpcurl` and `buf curl` lines.
//!
//! The call goes to the service's own port, through its whole stack, like
//! any client's. It carries a `traceparent` of a new trace: the service
//! does not continue a stranger's trace but links it, and the kept trace
//! with that link is the call's.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Sources, contract::Callable};

/// How long a call may take, and how much of its answer is read.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_BYTES: usize = 1 << 20;
/// A server stream is read for this long, or this many messages.
const STREAM_FOR: Duration = Duration::from_secs(3);
const STREAM_MESSAGES: usize = 20;
/// A customer's token is used again for this long.
const TOKEN_KEPT: Duration = Duration::from_secs(240);

pub struct Explorer {
    http: reqwest::Client,
    users_url: Option<String>,
    demo_account: Option<(String, String)>,
    demo_token: Mutex<Option<(String, Instant)>>,
}

/// Who the call is made as.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Caller {
    Anonymous,
    Demo,
    New,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// `package.Service/Method`.
    method: String,
    #[serde(rename = "as")]
    caller: Caller,
    #[serde(default)]
    body: Value,
}

/// What the explorer could not do (the call's own answer, whatever its
/// code, is not one of these).
#[derive(Debug, thiserror::Error)]
pub enum ExplorerError {
    #[error("{0}: no such RPC in the contract of the services running")]
    UnknownMethod(String),
    #[error("{0} is a client stream: the explorer calls unary methods and server streams")]
    ClientStream(String),
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("the shop runs no demo customer (it was started without demo data)")]
    NoDemoCustomer,
    #[error("signing in as {who}: {why}")]
    SignIn { who: &'static str, why: String },
    #[error("the call did not reach {url}: {why}")]
    Unreachable { url: String, why: String },
}

impl IntoResponse for ExplorerError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::UnknownMethod(_) => StatusCode::NOT_FOUND,
            Self::ClientStream(_) | Self::NotAnObject | Self::NoDemoCustomer => {
                StatusCode::BAD_REQUEST
            }
            Self::SignIn { .. } | Self::Unreachable { .. } => StatusCode::BAD_GATEWAY,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

impl Explorer {
    pub fn new(sources: &Sources) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .build()
                .unwrap_or_default(),
            users_url: sources
                .services
                .iter()
                .find(|s| s.name == "users")
                .map(|s| s.url.clone()),
            demo_account: sources.demo_account.clone(),
            demo_token: Mutex::new(None),
        }
    }

    async fn post(&self, url: &str, body: &Value) -> Result<Value, String> {
        let answer = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let ok = answer.status().is_success();
        let body: Value = answer.json().await.map_err(|e| e.to_string())?;
        if ok {
            Ok(body)
        } else {
            Err(body["message"].as_str().unwrap_or("refused").to_owned())
        }
    }

    fn users(&self, method: &str) -> Result<String, ExplorerError> {
        let base = self.users_url.as_deref().ok_or(ExplorerError::SignIn {
            who: "a customer",
            why: "the shop runs no users service".to_owned(),
        })?;
        Ok(format!("{base}/shop.users.v1.UserService/{method}"))
    }

    async fn token(&self, caller: Caller) -> Result<Option<String>, ExplorerError> {
        match caller {
            Caller::Anonymous => Ok(None),
            Caller::Demo => {
                if let Some((token, at)) = self
                    .demo_token
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    && at.elapsed() < TOKEN_KEPT
                {
                    return Ok(Some(token));
                }
                let (email, password) = self
                    .demo_account
                    .clone()
                    .ok_or(ExplorerError::NoDemoCustomer)?;
                let session = self
                    .post(
                        &self.users("LogIn")?,
                        &json!({ "email": email, "password": password }),
                    )
                    .await
                    .map_err(|why| ExplorerError::SignIn {
                        who: "the demo customer",
                        why,
                    })?;
                let token = access_token(&session).ok_or_else(|| ExplorerError::SignIn {
                    who: "the demo customer",
                    why: "no access token in the answer".to_owned(),
                })?;
                *self
                    .demo_token
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Some((token.clone(), Instant::now()));
                Ok(Some(token))
            }
            Caller::New => {
                let n: u64 = rand::random();
                let body = json!({
                    "email": format!("explorer-{n:016x}@example.com"),
                    "password": format!("explorer {n:016x}"),
                    "displayName": "Explorer",
                });
                let session = self
                    .post(&self.users("SignUp")?, &body)
                    .await
                    .map_err(|why| ExplorerError::SignIn {
                        who: "a new customer",
                        why,
                    })?;
                access_token(&session)
                    .map(Some)
                    .ok_or_else(|| ExplorerError::SignIn {
                        who: "a new customer",
                        why: "no access token in the answer".to_owned(),
                    })
            }
        }
    }
}

fn access_token(session: &Value) -> Option<String> {
    session["session"]["accessToken"]
        .as_str()
        .map(str::to_owned)
}

/// `POST /api/call`.
pub async fn call(
    State(state): State<Arc<crate::State>>,
    Json(request): Json<CallRequest>,
) -> Result<Json<Value>, ExplorerError> {
    let callable = state
        .contract
        .callable
        .get(&request.method)
        .cloned()
        .ok_or_else(|| ExplorerError::UnknownMethod(request.method.clone()))?;
    if callable.client_streaming {
        return Err(ExplorerError::ClientStream(request.method));
    }
    let body = match request.body {
        Value::Null => json!({}),
        Value::Object(_) => request.body,
        _ => return Err(ExplorerError::NotAnObject),
    };
    let explorer = &state.explorer;
    let token = explorer.token(request.caller).await?;
    let trace: u128 = rand::random::<u128>().max(1);
    let ours = format!("{trace:032x}");
    let began = Instant::now();
    let answer = send(
        explorer,
        &callable,
        &request.method,
        &body,
        token.as_deref(),
        &ours,
    )
    .await?;
    let elapsed_ms = began.elapsed().as_secs_f64() * 1000.0;
    // The service's span ends as its answer is sent: give it a moment.
    let mut trace_id = None;
    for _ in 0..20 {
        if let Some(found) = state.sources.traces.find("link", &ours).pop() {
            trace_id = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let order_id = answer.messages.iter().find_map(order_id);
    Ok(Json(json!({
        "httpStatus": answer.status,
        "code": answer.code,
        "messages": answer.messages,
        "elapsedMs": (elapsed_ms * 10.0).round() / 10.0,
        "traceId": trace_id,
        "orderId": order_id,
        "lines": lines(&callable, &request.method, &body, token.as_deref()),
    })))
}

/// The id of the order an answer is about, if it is about one.
fn order_id(message: &Value) -> Option<String> {
    let order = message.get("order")?;
    order.get("id")?.as_str().map(str::to_owned)
}

struct Answer {
    status: u16,
    code: String,
    messages: Vec<Value>,
}

async fn send(
    explorer: &Explorer,
    callable: &Callable,
    method: &str,
    body: &Value,
    token: Option<&str>,
    trace: &str,
) -> Result<Answer, ExplorerError> {
    let url = format!("{}/{method}", callable.url);
    let json = serde_json::to_vec(body).unwrap_or_default();
    let mut call = explorer
        .http
        .post(&url)
        .header("Connect-Protocol-Version", "1")
        .header("Connect-Timeout-Ms", CALL_TIMEOUT.as_millis().to_string())
        .header(
            "traceparent",
            format!("00-{trace}-{:016x}-01", rand::random::<u64>().max(1)),
        );
    if let Some(token) = token {
        call = call.bearer_auth(token);
    }
    call = if callable.server_streaming {
        let mut framed = vec![0u8];
        framed.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
        framed.extend_from_slice(&json);
        call.header("Content-Type", "application/connect+json")
            .body(framed)
    } else {
        call.header("Content-Type", "application/json").body(json)
    };
    let unreachable = |why: reqwest::Error| ExplorerError::Unreachable {
        url: url.clone(),
        why: why.to_string(),
    };
    let mut answer = call.send().await.map_err(unreachable)?;
    let status = answer.status().as_u16();
    if !callable.server_streaming {
        let bytes = read_at_most(&mut answer, ANSWER_BYTES, CALL_TIMEOUT).await;
        let message: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        let code = if status == 200 {
            "ok".to_owned()
        } else {
            message["code"].as_str().unwrap_or("unknown").to_owned()
        };
        return Ok(Answer {
            status,
            code,
            messages: vec![message],
        });
    }
    // A server stream: its messages for a few seconds, then its end (or
    // the end of reading it).
    let bytes = read_at_most(&mut answer, ANSWER_BYTES, STREAM_FOR).await;
    let mut messages = Vec::new();
    let mut code = "ok (still streaming when the explorer stopped reading)".to_owned();
    let mut rest = bytes.as_slice();
    while rest.len() >= 5 && messages.len() < STREAM_MESSAGES {
        let flags = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let Some(frame) = rest.get(5..5 + len) else {
            break;
        };
        let value: Value = serde_json::from_slice(frame).unwrap_or(Value::Null);
        if flags & 2 == 2 {
            code = value["error"]["code"].as_str().unwrap_or("ok").to_owned();
            if !value["error"].is_null() {
                messages.push(value);
            }
            break;
        }
        messages.push(value);
        rest = &rest[5 + len..];
    }
    Ok(Answer {
        status,
        code,
        messages,
    })
}

/// The answer's bytes, at most `limit` of them, read for at most `patience`.
async fn read_at_most(answer: &mut reqwest::Response, limit: usize, patience: Duration) -> Vec<u8> {
    let mut bytes = Vec::new();
    let until = tokio::time::Instant::now() + patience;
    while bytes.len() < limit {
        match tokio::time::timeout_at(until, answer.chunk()).await {
            Ok(Ok(Some(chunk))) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(limit);
    bytes
}

/// `text` in single quotes for a POSIX shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The same call as `curl`, `grpcurl` and `buf curl` lines.
fn lines(callable: &Callable, method: &str, body: &Value, token: Option<&str>) -> Value {
    let data = quoted(&body.to_string());
    let authorization = token
        .map(|token| format!(" -H {}", quoted(&format!("Authorization: Bearer {token}"))))
        .unwrap_or_default();
    let url = format!("{}/{method}", callable.url);
    let host = callable
        .url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let curl = if callable.server_streaming {
        // Connect frames each message of a stream: plain curl cannot
        // write the frame's length for you.
        format!(
            "# a server stream: each message is framed (buf curl and grpcurl below frame it)\nbuf curl --protocol connect{authorization} -d {data} {url}"
        )
    } else {
        format!("curl -s {url} -H 'Content-Type: application/json'{authorization} -d {data}")
    };
    json!({
        "curl": curl,
        "grpcurl": format!("grpcurl -plaintext{authorization} -d {data} {host} {method}"),
        "bufCurl": format!(
            "buf curl --http2-prior-knowledge --protocol grpc --reflect{authorization} -d {data} {url}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_quote_what_a_shell_would_split() {
        let callable = Callable {
            url: "http://127.0.0.1:8082".to_owned(),
            server_streaming: false,
            client_streaming: false,
        };
        let made = lines(
            &callable,
            "shop.catalog.v1.CatalogService/GetProduct",
            &json!({ "id": "it's" }),
            Some("t0k"),
        );
        assert_eq!(
            made["curl"],
            r#"curl -s http://127.0.0.1:8082/shop.catalog.v1.CatalogService/GetProduct -H 'Content-Type: application/json' -H 'Authorization: Bearer t0k' -d '{"id":"it'\''s"}'"#
        );
        assert_eq!(
            made["grpcurl"],
            r#"grpcurl -plaintext -H 'Authorization: Bearer t0k' -d '{"id":"it'\''s"}' 127.0.0.1:8082 shop.catalog.v1.CatalogService/GetProduct"#
        );
    }
}
