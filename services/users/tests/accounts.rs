//! The users service over real HTTP on loopback: Connect JSON from a plain
//! client, gRPC from tonic, with its own SQLite file.

use std::{net::SocketAddr, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shop_kit::{
    app::Launch,
    auth::{Claims, TokenVerifier},
};
use shop_proto::identity::{AUDIENCE, ISSUER, token_rules};
use shop_proto::shop::users::v1::{self as pb, user_service_client::UserServiceClient};
use shop_users::{Accounts, throttle::ThrottleConfig, tokens::TokenIssuer};

const SERVICE_SECRET: &str = "the services' shared secret";

struct TestUsers {
    addr: SocketAddr,
    accounts: Accounts,
    _database: shop_kit::testing::TestDatabase,
}

impl TestUsers {
    async fn start() -> Self {
        Self::start_with(ThrottleConfig::default()).await
    }

    async fn start_with(throttle: ThrottleConfig) -> Self {
        let database = shop_kit::testing::TestDatabase::new("users").await;
        let users = shop_users::Config {
            service_secret: SERVICE_SECRET.into(),
            throttle,
            ..shop_users::Config::new(database.url.as_str().into())
        };
        let running = Launch::new(users).start().await.expect("users");
        Self {
            addr: running.addr,
            accounts: running.handle,
            _database: database,
        }
    }

    async fn call(&self, method: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        // IssueServiceToken is the internal ServiceTokenService's.
        let service = if method == "IssueServiceToken" {
            "ServiceTokenService"
        } else {
            "UserService"
        };
        let url = format!("http://{}/shop.users.v1.{service}/{method}", self.addr);
        shop_kit::testing::call_json(&url, token, &body).await
    }

    async fn sign_up(&self, email: &str) -> Value {
        let (status, body) = self
            .call(
                "SignUp",
                json!({"email": email, "password": "correct horse 9", "displayName": "Ada"}),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn grpc(&self) -> UserServiceClient<tonic::transport::Channel> {
        UserServiceClient::connect(format!("http://{}", self.addr))
            .await
            .expect("connect")
    }

    /// Signs `claims` with the service's own key (to forge claims, not keys).
    async fn sign_with_service_key(&self, claims: &Claims) -> String {
        let (kid, der) = self
            .accounts
            .store()
            .signing_key(|| unreachable!("the key exists"), 0)
            .await
            .expect("key");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der)).expect("sign")
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn sign_up_then_log_in_then_get_me() {
    let users = TestUsers::start().await;
    let signed_up = users.sign_up("Ada@Example.com").await;
    assert_eq!(signed_up["user"]["email"], "ada@example.com");
    assert!(
        signed_up["session"]["refreshToken"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    // A google.protobuf.Duration: 15 minutes.
    assert_eq!(signed_up["session"]["expiresIn"], "900s", "{signed_up}");

    let (status, logged_in) = users
        .call(
            "LogIn",
            json!({"email": "ADA@example.COM", "password": "correct horse 9"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{logged_in}");
    let token = logged_in["session"]["accessToken"].as_str().expect("token");
    let (status, me) = users.call("GetMe", json!({}), Some(token)).await;
    assert_eq!(
        (status, me["user"]["displayName"].as_str()),
        (200, Some("Ada"))
    );

    // The same over gRPC.
    let mut request = tonic::Request::new(pb::GetMeRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let me = users
        .grpc()
        .await
        .get_me(request)
        .await
        .expect("get me")
        .into_inner();
    assert_eq!(me.user.expect("user").email, "ada@example.com");
}

#[tokio::test]
async fn bad_sign_ups_name_the_offending_field() {
    let users = TestUsers::start().await;
    users.sign_up("ada@example.com").await;
    let (status, taken) = users
        .call("SignUp", json!({"email": "ADA@EXAMPLE.COM", "password": "correct horse 9", "displayName": "Ada 2"}), None)
        .await;
    assert_eq!(
        (status, taken["code"].as_str()),
        (409, Some("already_exists"))
    );
    for (body, field) in [
        (
            json!({"email": "not-an-email", "password": "correct horse 9", "displayName": "B"}),
            "email",
        ),
        (
            json!({"email": "b@example.com", "password": "short1", "displayName": "B"}),
            "password",
        ),
        (
            json!({"email": "b@example.com", "password": "no digits here", "displayName": "B"}),
            "password",
        ),
        (
            json!({"email": "b@example.com", "password": "correct horse 9", "displayName": " "}),
            "displayName",
        ),
    ] {
        let (status, error) = users.call("SignUp", body, None).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("invalid_argument"))
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with(field),
            "{error}"
        );
    }
}

#[tokio::test]
async fn wrong_credentials_do_not_say_which_was_wrong() {
    let users = TestUsers::start().await;
    users.sign_up("ada@example.com").await;
    let (status, wrong_password) = users
        .call(
            "LogIn",
            json!({"email": "ada@example.com", "password": "wrong horse 9"}),
            None,
        )
        .await;
    let (_, unknown_email) = users
        .call(
            "LogIn",
            json!({"email": "eve@example.com", "password": "correct horse 9"}),
            None,
        )
        .await;
    assert_eq!(
        (status, wrong_password["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(wrong_password, unknown_email);
}

#[tokio::test]
async fn refresh_tokens_are_single_use() {
    let users = TestUsers::start().await;
    let signed_up = users.sign_up("ada@example.com").await;
    let refresh = signed_up["session"]["refreshToken"]
        .as_str()
        .expect("refresh");
    let (status, renewed) = users
        .call("Refresh", json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(status, 200, "{renewed}");
    let (status, again) = users
        .call("Refresh", json!({"refreshToken": refresh}), None)
        .await;
    assert_eq!(
        (status, again["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let newer = renewed["session"]["refreshToken"]
        .as_str()
        .expect("new refresh");
    assert_eq!(
        users
            .call("Refresh", json!({"refreshToken": newer}), None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn forged_and_stale_tokens_are_unauthenticated_on_connect_and_grpc() {
    let users = TestUsers::start().await;
    let signed_up = users.sign_up("ada@example.com").await;
    let user_id = signed_up["user"]["id"].as_str().expect("id").to_owned();
    let good = Claims {
        sub: user_id.clone(),
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        exp: now() + 300,
        nbf: now() - 1,
        iat: now() - 1,
    };
    let valid = users.sign_with_service_key(&good).await;

    let (other_kid, other_der) = TokenIssuer::generate_key().expect("key");
    let other = TokenIssuer::from_pkcs8(other_kid, &other_der).expect("issuer");
    let another_key = other.access_token(&user_id, now()).expect("token");
    let same_kid_other_key = {
        let kid = jsonwebtoken::decode_header(&valid)
            .expect("header")
            .kid
            .expect("kid");
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, &good, &EncodingKey::from_ed_der(&other_der)).expect("sign")
    };
    let alg_none = {
        let kid = jsonwebtoken::decode_header(&valid)
            .expect("header")
            .kid
            .expect("kid");
        let header =
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).expect("json"));
        format!("{header}.{payload}.")
    };
    let expired = users
        .sign_with_service_key(&Claims {
            exp: now() - 120,
            ..good.clone()
        })
        .await;
    let wrong_audience = users
        .sign_with_service_key(&Claims {
            aud: "another-shop".into(),
            ..good.clone()
        })
        .await;
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                sub: "someone-else".into(),
                ..good.clone()
            })
            .expect("json"),
        );
        parts.join(".")
    };

    assert_eq!(users.call("GetMe", json!({}), Some(&valid)).await.0, 200);
    let mut grpc = users.grpc().await;
    for (case, token) in [
        ("no token", None),
        ("another key", Some(another_key.as_str())),
        ("same kid, another key", Some(same_kid_other_key.as_str())),
        ("alg none", Some(alg_none.as_str())),
        ("expired", Some(expired.as_str())),
        ("wrong audience", Some(wrong_audience.as_str())),
        ("tampered payload", Some(tampered.as_str())),
    ] {
        let (status, error) = users.call("GetMe", json!({}), token).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (401, Some("unauthenticated")),
            "connect: {case}"
        );

        let mut request = tonic::Request::new(pb::GetMeRequest {});
        if let Some(token) = token {
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
        }
        let status = grpc.get_me(request).await.expect_err(case);
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "grpc: {case}");
    }
}

#[tokio::test]
async fn other_services_fetch_the_public_keys() {
    let users = TestUsers::start().await;
    let signed_up = users.sign_up("ada@example.com").await;
    let token = signed_up["session"]["accessToken"].as_str().expect("token");
    let verifier = TokenVerifier::fetch(
        &shop_kit::client::PeerTarget::addr(users.addr),
        Duration::from_secs(5),
        &token_rules(),
    )
    .await
    .expect("jwks");
    assert_eq!(
        verifier.verify(token).expect("valid").sub,
        signed_up["user"]["id"].as_str().expect("id")
    );
    // GetPublicKeys answers the JWK set as a message; in JSON it is the
    // very document /.well-known/jwks.json serves.
    let (status, keys) = users.call("GetPublicKeys", json!({}), None).await;
    assert_eq!(status, 200, "{keys}");
    let document: Value = reqwest::get(format!("http://{}/.well-known/jwks.json", users.addr))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(keys, document);
    assert_eq!(keys["keys"][0]["kty"], "OKP");
    assert_eq!(keys["keys"][0]["use"], "sig");
}

#[tokio::test]
async fn concurrent_sign_ups_of_one_email_create_one_account() {
    let users = TestUsers::start().await;
    let attempts = (0..10).map(|i| {
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        users.call(
            "SignUp",
            json!({"email": email, "password": "correct horse 9", "displayName": "R"}),
            None,
        )
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|(status, _)| *status == 200).count();
    let refused = results
        .iter()
        .filter(|(_, body)| body["code"] == "already_exists")
        .count();
    assert_eq!((created, refused), (1, 9));
}

#[tokio::test]
async fn services_get_service_tokens_with_the_shared_secret_only() {
    let users = TestUsers::start().await;
    let (status, issued) = users
        .call(
            "IssueServiceToken",
            json!({"serviceName": "orders", "serviceSecret": SERVICE_SECRET}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["accessToken"].as_str().expect("token");
    assert_eq!(issued["expiresIn"], "900s", "{issued}");
    let verifier = users.accounts.issuer().verifier().expect("verifier");
    assert_eq!(verifier.verify(token).expect("valid").sub, "service:orders");

    let (status, wrong) = users
        .call(
            "IssueServiceToken",
            json!({"serviceName": "orders", "serviceSecret": "guess"}),
            None,
        )
        .await;
    assert_eq!(
        (status, wrong["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, bad_name) = users
        .call(
            "IssueServiceToken",
            json!({"serviceName": "Orders!", "serviceSecret": SERVICE_SECRET}),
            None,
        )
        .await;
    assert_eq!(
        (status, bad_name["code"].as_str()),
        (400, Some("invalid_argument"))
    );

    // A certificate naming the service is proof enough; naming another is not.
    let by_certificate = shop_users::ServiceProof::Certificate("orders");
    assert!(
        users
            .accounts
            .issue_service_token("orders", by_certificate)
            .is_ok()
    );
    assert!(matches!(
        users
            .accounts
            .issue_service_token("payments", by_certificate),
        Err(shop_users::UsersError::CertifiedAsAnother { .. })
    ));
}

fn log_in(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

#[tokio::test]
async fn failed_log_ins_lock_an_email_for_a_while_and_a_success_resets_them() {
    let users = TestUsers::start_with(ThrottleConfig {
        sign_in_failures: 3,
        ..ThrottleConfig::default()
    })
    .await;
    users.sign_up("ada@example.com").await;
    // Two failures, then the right password: the count starts again.
    for _ in 0..2 {
        let (status, _) = users
            .call("LogIn", log_in("ada@example.com", "guess 1"), None)
            .await;
        assert_eq!(status, 401);
    }
    let (status, _) = users
        .call("LogIn", log_in("ada@example.com", "correct horse 9"), None)
        .await;
    assert_eq!(status, 200, "a success resets the failures");
    for _ in 0..3 {
        let (status, _) = users
            .call("LogIn", log_in("ada@example.com", "guess 2"), None)
            .await;
        assert_eq!(status, 401);
    }
    // Locked now, even with the right password; an unknown email the same.
    let (status, locked) = users
        .call("LogIn", log_in("ada@example.com", "correct horse 9"), None)
        .await;
    assert_eq!(
        (status, locked["code"].as_str()),
        (429, Some("resource_exhausted")),
        "{locked}"
    );
    for _ in 0..3 {
        users
            .call("LogIn", log_in("nobody@example.com", "guess"), None)
            .await;
    }
    let (_, nobody) = users
        .call("LogIn", log_in("nobody@example.com", "guess"), None)
        .await;
    assert_eq!(
        nobody["message"], locked["message"],
        "the same answer whether or not the account exists"
    );
    assert_eq!(
        locked["details"][0]["type"].as_str(),
        Some("google.rpc.RetryInfo"),
        "{locked}"
    );

    // Over gRPC: resource_exhausted too, with the wait in retry-after.
    let refused = users
        .grpc()
        .await
        .log_in(pb::LogInRequest {
            email: "ada@example.com".into(),
            password: "correct horse 9".into(),
        })
        .await
        .expect_err("locked");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    let wait: u64 = refused
        .metadata()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn one_address_gets_a_burst_of_sign_in_attempts_then_waits() {
    let users = TestUsers::start_with(ThrottleConfig {
        sign_in_ip_burst: 4,
        sign_in_ip_per_minute: 6,
        ..ThrottleConfig::default()
    })
    .await;
    let mut codes = Vec::new();
    for i in 0..6 {
        let (_, body) = users
            .call(
                "LogIn",
                log_in(&format!("user{i}@example.com"), "guess"),
                None,
            )
            .await;
        codes.push(body["code"].as_str().unwrap_or("ok").to_owned());
    }
    assert_eq!(
        codes,
        [
            "unauthenticated",
            "unauthenticated",
            "unauthenticated",
            "unauthenticated",
            "resource_exhausted",
            "resource_exhausted"
        ]
    );
    let (status, refused) = users
        .call("Refresh", json!({"refreshToken": "x"}), None)
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (429, Some("resource_exhausted"))
    );
}

/// The request rules of users.proto (buf.validate), refused on every
/// protocol before any password is hashed, naming each field as the
/// caller wrote it.
#[tokio::test]
async fn account_requests_breaking_a_rule_are_refused_on_every_protocol() {
    use shop_kit::testing::refusals::assert_bad_request;
    let users = TestUsers::start().await;
    let base = format!("http://{}", users.addr);
    let sign_up = pb::SignUpRequest {
        email: String::new(),
        // Too long, and only that (a letter and a digit in it).
        password: format!("x1{}", "x".repeat(127)),
        display_name: "d".repeat(101),
    };
    assert_bad_request(
        &base,
        "/shop.users.v1.UserService/SignUp",
        None,
        &sign_up,
        &[
            ("email", "email"),
            ("password", "password"),
            ("display_name", "displayName"),
        ],
    )
    .await;
    // A megabyte password is refused before argon2 sees it.
    let log_in = pb::LogInRequest {
        email: "ada@example.com".into(),
        password: "p".repeat(1 << 20),
    };
    assert_bad_request(
        &base,
        "/shop.users.v1.UserService/LogIn",
        None,
        &log_in,
        &[("password", "password")],
    )
    .await;
    assert_bad_request(
        &base,
        "/shop.users.v1.UserService/Refresh",
        None,
        &pb::RefreshRequest::default(),
        &[("refresh_token", "refreshToken")],
    )
    .await;
    let service = pb::IssueServiceTokenRequest {
        service_name: "Orders!".into(),
        service_secret: SERVICE_SECRET.into(),
    };
    assert_bad_request(
        &base,
        "/shop.users.v1.ServiceTokenService/IssueServiceToken",
        None,
        &service,
        &[("service_name", "serviceName")],
    )
    .await;
}

/// Replicas of the users service started at the same moment on one fresh
/// database each make a key, and agree on one (the oldest): a token from
/// either verifies with the keys any replica serves, as every other
/// service fetches them from whichever replica answers.
#[tokio::test]
async fn replicas_started_together_sign_with_one_key() {
    let database = shop_kit::testing::TestDatabase::new("users").await;
    let start = || {
        let users = shop_users::Config {
            service_secret: SERVICE_SECRET.into(),
            ..shop_users::Config::new(database.url.as_str().into())
        };
        async move { Launch::new(users).start().await.expect("a replica") }
    };
    let (first, second) = tokio::join!(start(), start());
    let both =
        shop_kit::client::PeerTarget::url(&format!("http://{},http://{}", first.addr, second.addr))
            .expect("two replicas");
    let everywhere = TokenVerifier::fetch(&both, Duration::from_secs(5), &token_rules())
        .await
        .expect("keys");
    for (replica, at) in [(&first, "first"), (&second, "second")] {
        let url = format!("http://{}/shop.users.v1.UserService/SignUp", replica.addr);
        let (status, body) = shop_kit::testing::call_json(
            &url,
            None,
            &json!({"email": format!("{at}@example.com"), "password": "correct horse 9", "displayName": "Ada"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let token = body["session"]["accessToken"].as_str().expect("token");
        for addr in [first.addr, second.addr] {
            let keys = TokenVerifier::fetch(
                &shop_kit::client::PeerTarget::addr(addr),
                Duration::from_secs(5),
                &token_rules(),
            )
            .await
            .expect("keys");
            assert!(keys.verify(token).is_ok(), "a token of the {at} replica");
        }
        assert!(everywhere.verify(token).is_ok());
    }
}

/// Many replicas opening one fresh database at the same moment (each
/// connecting, migrating, creating or loading the signing key) all start,
/// round after round: they wait for each other, none fails with "database
/// is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_replicas_opening_one_fresh_database_together_all_start() {
    const REPLICAS: usize = 8;
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let database = shop_kit::testing::TestDatabase::new("users").await;
        let starts = (0..REPLICAS).map(|_| {
            let users = shop_users::Config {
                service_secret: SERVICE_SECRET.into(),
                ..shop_users::Config::new(database.url.as_str().into())
            };
            shop_kit::task::spawn(async move { Launch::new(users).start().await })
        });
        let mut keys = std::collections::BTreeSet::new();
        for started in futures::future::join_all(starts).await {
            let replica = started
                .expect("joined")
                .unwrap_or_else(|error| panic!("round {round}: a replica failed: {error}"));
            let jwks = reqwest::get(format!("http://{}/.well-known/jwks.json", replica.addr))
                .await
                .expect("jwks")
                .text()
                .await
                .expect("jwks text");
            keys.insert(jwks);
        }
        assert_eq!(
            keys.len(),
            1,
            "round {round}: every replica signs with one key"
        );
    }
}

#[tokio::test]
async fn rest_routes_sign_up_log_in_and_read_the_signed_in_user_only() {
    let users = TestUsers::start().await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", users.addr);
    let signed_up = client
        .post(url("/v1/users"))
        .json(&json!({"email": "rest@example.com", "password": "correct horse 9", "displayName": "Rae"}))
        .send()
        .await
        .expect("send");
    assert_eq!(signed_up.status(), 200);
    let logged_in: Value = client
        .post(url("/v1/sessions"))
        .json(&json!({"email": "rest@example.com", "password": "correct horse 9"}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let token = logged_in["session"]["accessToken"].as_str().expect("token");

    let me: Value = client
        .get(url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(me["user"]["displayName"], "Rae", "{me}");

    // The handler's rule, not a route's: no token, no user.
    let refused = client.get(url("/v1/me")).send().await.expect("send");
    assert_eq!(refused.status(), 401);
    let error: Value = refused.json().await.expect("json");
    assert_eq!(error["code"], "unauthenticated");

    // A wrong password is the same refusal over REST as over Connect.
    let wrong = client
        .post(url("/v1/sessions"))
        .json(&json!({"email": "rest@example.com", "password": "wrong horse 9"}))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status(), 401);
}

/// What a users replica with the shared secret `current` (and `previous`
/// beside it) answers an IssueServiceToken showing each of `shown`: the
/// HTTP statuses. The kit checks the secret (the contract's `shop_secret`
/// caller), before the method runs.
async fn statuses_shown(
    database: &shop_kit::testing::TestDatabase,
    (current, previous): (&str, &str),
    shown: &[&str],
) -> Vec<u16> {
    let users = shop_users::Config {
        service_secret: current.into(),
        service_secret_previous: previous.into(),
        ..shop_users::Config::new(database.url.as_str().into())
    };
    let replica = Launch::new(users).start().await.expect("a replica");
    let url = format!(
        "http://{}/shop.users.v1.ServiceTokenService/IssueServiceToken",
        replica.addr
    );
    let mut statuses = Vec::new();
    for secret in shown {
        let body = json!({"serviceName": "orders", "serviceSecret": secret});
        let (status, answer) = shop_kit::testing::call_json(&url, None, &body).await;
        if status != 200 {
            assert!(answer["message"].is_string(), "{answer}");
        }
        statuses.push(status);
    }
    statuses
}

#[tokio::test]
async fn a_fleet_half_on_each_service_secret_keeps_getting_service_tokens() {
    // The two steps of a rotation (docs/tls.md): first the new value is
    // accepted beside the old, then it is the one sent and the old one is
    // accepted beside it. Replicas of users on either step, and callers
    // showing either value, always agree.
    let database = shop_kit::testing::TestDatabase::new("users").await;
    let (old, new) = ("the old service secret", "the new service secret");
    for step in [(old, new), (new, old)] {
        assert_eq!(
            statuses_shown(&database, step, &[old, new, "a guess"]).await,
            [200, 200, 401],
            "{step:?}"
        );
    }
    // Once done (the previous value dropped), the old one is refused.
    assert_eq!(
        statuses_shown(&database, (new, ""), &[old, new]).await,
        [401, 200]
    );
    // A previous value never enables disabled service tokens: without a
    // secret, only a client certificate gets one.
    assert_eq!(
        statuses_shown(&database, ("", old), &[old, ""]).await,
        [403, 403]
    );
}
