//! Who is calling: the extractors handlers name in their signatures, and
//! the one rule telling the shop's services from its customers.

use axum::extract::FromRequestParts;
use connectrpc_axum::prelude::ConnectError;
use http::request::Parts;

use super::TokenVerifier;
use shop_kit_tls::{ClientIdentity, TlsSession};

/// The token of an `Authorization: Bearer <token>` header (the scheme's
/// case does not matter), the one way every part of the shop reads it.
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Subjects of the shop's own services start with this; users' ids never do.
pub const SERVICE_SUBJECT_PREFIX: &str = "service:";

/// Whether a request comes from one of the shop's own services: a client
/// certificate naming one, or a valid service token. Refuses nothing (it
/// decides whose trace a call continues, not whether it is served).
pub fn is_shop_service<B>(request: &http::Request<B>) -> bool {
    if let Some(TlsSession {
        client: Some(ClientIdentity::Service(_)),
        ..
    }) = request.extensions().get::<TlsSession>()
    {
        return true;
    }
    let (Some(verifier), Some(token)) = (
        request.extensions().get::<TokenVerifier>(),
        bearer_token(request.headers()),
    ) else {
        return false;
    };
    verifier
        .verify(token)
        .is_ok_and(|claims| claims.sub.starts_with(SERVICE_SUBJECT_PREFIX))
}

/// The authenticated caller of an RPC. As an extractor it requires a valid
/// `Authorization: Bearer <access token>`; otherwise the call fails with
/// `unauthenticated`, whatever the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user_id: String,
}

impl Caller {
    /// The service's name if the caller is one of the shop's services.
    pub fn service(&self) -> Option<&str> {
        self.user_id.strip_prefix(SERVICE_SUBJECT_PREFIX)
    }
}

/// A caller that must be one of the shop's own services, as its client
/// certificate (see [`CertifiedService`]) or else its service token says:
/// a customer's valid token gets `permission_denied`, no valid token
/// `unauthenticated`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCaller {
    pub service: String,
}

/// The shop's service a caller's client certificate names (mutual TLS),
/// if it showed one: `Some(name)`. A certificate naming none of the shop's
/// services is `permission_denied`; no certificate where the listener
/// requires one for internal calls (`--tls-require-service-cert`) is
/// `unauthenticated`; otherwise no certificate is `None`, and the caller
/// proves who it is some other way (a service token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedService(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for CertifiedService {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectError> {
        let Some(session) = parts.extensions.get::<TlsSession>() else {
            return Ok(Self(None));
        };
        match &session.client {
            Some(ClientIdentity::Service(name)) => Ok(Self(Some(name.clone()))),
            Some(ClientIdentity::Unknown(names)) => Err(ConnectError::new_permission_denied(
                format!("the client certificate ({names}) names none of the shop's services"),
            )),
            None if session.service_certificate_required => Err(ConnectError::new_unauthenticated(
                "only the shop's own services may make this call: it needs their \
                     client certificate (mutual TLS)",
            )),
            None => Ok(Self(None)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ConnectError> {
        // A service's certificate says who it is; without one, its token.
        if let CertifiedService(Some(service)) =
            CertifiedService::from_request_parts(parts, state).await?
        {
            return Ok(Self { service });
        }
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.service() {
            Some(service) => Ok(Self {
                service: service.to_owned(),
            }),
            None => Err(ConnectError::new_permission_denied(
                "only the shop's own services may make this call",
            )),
        }
    }
}

/// A caller that must be a signed-in customer, not one of the shop's
/// services: for what only a customer does for themself (placing an order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub user_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Customer {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ConnectError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.service() {
            Some(_) => Err(ConnectError::new_permission_denied(
                "only a signed-in customer may make this call",
            )),
            None => Ok(Self {
                user_id: caller.user_id,
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectError> {
        let verifier = parts
            .extensions
            .get::<TokenVerifier>()
            .ok_or_else(|| ConnectError::new_internal("this service does not verify tokens"))?;
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            ConnectError::new_unauthenticated("sign in: this call needs an access token")
        })?;
        match verifier.verify(token) {
            Ok(claims) => Ok(Self {
                user_id: claims.sub,
            }),
            Err(reason) => {
                tracing::debug!(%reason, "access token refused");
                Err(ConnectError::new_unauthenticated(
                    "the access token is invalid or expired: sign in again",
                ))
            }
        }
    }
}
