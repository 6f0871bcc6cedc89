//! Who is calling: the extractors handlers name in their signatures, and
//! the one rule telling the shop's services from its customers.

use axum::extract::FromRequestParts;
use connectrpc_axum::prelude::ConnectError;
use http::{Extensions, HeaderMap, request::Parts};
use shop_kit_policy::CallerRule;

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

/// Why a caller is refused: each with its words, and its Connect code
/// given once ([`From`] below).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallerRefused {
    #[error("sign in: this call needs an access token")]
    NoToken,
    #[error("the access token is invalid or expired: sign in again")]
    BadToken,
    #[error("this service does not verify tokens")]
    NoVerifier,
    #[error("the client certificate ({0}) names none of the shop's services")]
    UnknownCertificate(String),
    #[error(
        "only the shop's own services may make this call: it needs their client certificate (mutual TLS)"
    )]
    NoCertificate,
    #[error("only the shop's own services may make this call")]
    NotAService,
    #[error("only a signed-in customer may make this call")]
    NotACustomer,
    #[error("only the {} service may make this call", .0.join(" or "))]
    NotNamed(Vec<String>),
    /// A service proving itself by the shared secret, where none is set.
    #[error(
        "this service takes no shared secret (none is set): prove who you are with a client certificate"
    )]
    NoSharedSecret,
    #[error("wrong service secret")]
    WrongSecret,
}

impl From<CallerRefused> for ConnectError {
    fn from(refused: CallerRefused) -> Self {
        let message = refused.to_string();
        match refused {
            CallerRefused::NoToken
            | CallerRefused::BadToken
            | CallerRefused::NoCertificate
            | CallerRefused::WrongSecret => Self::new_unauthenticated(message),
            CallerRefused::NoVerifier => Self::new_internal(message),
            CallerRefused::UnknownCertificate(_)
            | CallerRefused::NotAService
            | CallerRefused::NotACustomer
            | CallerRefused::NotNamed(_)
            | CallerRefused::NoSharedSecret => Self::new_permission_denied(message),
        }
    }
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

impl CertifiedService {
    /// What the request's TLS session (in `extensions`) says.
    pub fn of(extensions: &Extensions) -> Result<Self, CallerRefused> {
        let Some(session) = extensions.get::<TlsSession>() else {
            return Ok(Self(None));
        };
        match &session.client {
            Some(ClientIdentity::Service(name)) => Ok(Self(Some(name.clone()))),
            Some(ClientIdentity::Unknown(names)) => {
                Err(CallerRefused::UnknownCertificate(names.to_string()))
            }
            None if session.service_certificate_required => Err(CallerRefused::NoCertificate),
            None => Ok(Self(None)),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CertifiedService {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectError> {
        Ok(Self::of(&parts.extensions)?)
    }
}

impl ServiceCaller {
    /// The service calling, and the token that said so (`None` when its
    /// certificate did).
    fn of(
        headers: &HeaderMap,
        extensions: &Extensions,
    ) -> Result<(Self, Option<Caller>), CallerRefused> {
        // A service's certificate says who it is; without one, its token.
        if let CertifiedService(Some(service)) = CertifiedService::of(extensions)? {
            return Ok((Self { service }, None));
        }
        let caller = Caller::of(headers, extensions)?;
        match caller.service() {
            Some(service) => Ok((
                Self {
                    service: service.to_owned(),
                },
                Some(caller),
            )),
            None => Err(CallerRefused::NotAService),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ServiceCaller {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectError> {
        Ok(Self::of(&parts.headers, &parts.extensions).map(|(service, _)| service)?)
    }
}

/// A caller that must be a signed-in customer, not one of the shop's
/// services: for what only a customer does for themself (placing an order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    pub user_id: String,
}

impl Customer {
    fn of(headers: &HeaderMap, extensions: &Extensions) -> Result<Self, CallerRefused> {
        let caller = Caller::of(headers, extensions)?;
        match caller.service() {
            Some(_) => Err(CallerRefused::NotACustomer),
            None => Ok(Self {
                user_id: caller.user_id,
            }),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Customer {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectError> {
        Ok(Self::of(&parts.headers, &parts.extensions)?)
    }
}

impl Caller {
    /// Who the request's access token says is calling: as the method's
    /// caller rule already found (left in `extensions` by [`admit`]), or
    /// verified now.
    fn of(headers: &HeaderMap, extensions: &Extensions) -> Result<Self, CallerRefused> {
        if let Some(caller) = extensions.get::<Self>() {
            return Ok(caller.clone());
        }
        let verifier = extensions
            .get::<TokenVerifier>()
            .ok_or(CallerRefused::NoVerifier)?;
        let token = bearer_token(headers).ok_or(CallerRefused::NoToken)?;
        match verifier.verify(token) {
            Ok(claims) => Ok(Self {
                user_id: claims.sub,
            }),
            Err(reason) => {
                tracing::debug!(%reason, "access token refused");
                Err(CallerRefused::BadToken)
            }
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ConnectError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ConnectError> {
        Ok(Self::of(&parts.headers, &parts.extensions)?)
    }
}

/// Whether the caller of a request may call a method whose contract says
/// `rule` (its `kit.policy.v1` caller): refused with the same codes and
/// words as the extractors above. The caller a token proved is left in
/// `extensions`, so a handler's extractor reads it rather than verifying
/// the token again.
pub fn admit(
    rule: &CallerRule,
    headers: &HeaderMap,
    extensions: &mut Extensions,
) -> Result<(), CallerRefused> {
    let caller = match rule {
        CallerRule::Anyone => return Ok(()),
        // A certificate is checked now; without one, the secret in the
        // request is, once the request is read (see `SharedSecret`).
        CallerRule::ShopSecret => {
            let certified = CertifiedService::of(extensions)?;
            extensions.insert(certified);
            return Ok(());
        }
        CallerRule::SignedIn => Caller::of(headers, extensions)?,
        CallerRule::Customer => {
            let customer = Customer::of(headers, extensions)?;
            Caller {
                user_id: customer.user_id,
            }
        }
        CallerRule::Services(names) => {
            let (service, by_token) = ServiceCaller::of(headers, extensions)?;
            if !names.contains(&service.service) {
                return Err(CallerRefused::NotNamed(names.clone()));
            }
            match by_token {
                Some(caller) => caller,
                None => return Ok(()),
            }
        }
    };
    extensions.insert(caller);
    Ok(())
}
