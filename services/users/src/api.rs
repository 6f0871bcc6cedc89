//! RPC handlers of `shop.users.v1.UserService`: proto in, domain call,
//! proto out, on Connect, gRPC and gRPC-Web alike.

use std::time::Duration;

use axum::extract::State;
use connectrpc_axum::prelude::*;
use shop_kit::{
    RpcService, Valid,
    auth::{Caller, CertifiedService},
    client::CallContext,
};
use shop_proto::shop::users::v1 as pb;

use crate::{AppState, ServiceProof, domain::User, error::UsersError};

impl From<UsersError> for ConnectError {
    fn from(error: UsersError) -> Self {
        match &error {
            UsersError::InvalidArgument { .. } => {
                ConnectError::new(Code::InvalidArgument, error.to_string())
            }
            UsersError::EmailTaken => ConnectError::new(Code::AlreadyExists, error.to_string()),
            UsersError::CertifiedAsAnother { .. } => {
                ConnectError::new(Code::PermissionDenied, error.to_string())
            }
            UsersError::WrongCredentials
            | UsersError::InvalidRefreshToken
            | UsersError::UnknownUser => {
                ConnectError::new(Code::Unauthenticated, error.to_string())
            }
            UsersError::HashingBusy => shop_kit::rpc::connect_errors::retry_later(
                error.to_string(),
                Duration::from_secs(1),
            ),
            UsersError::Throttled { retry_after } => {
                shop_kit::rpc::connect_errors::retry_later(error.to_string(), *retry_after)
            }
            UsersError::SigningKey(_) | UsersError::Hashing(_) => {
                tracing::error!(%error, "users service failure");
                ConnectError::new(Code::Internal, "internal error")
            }
            UsersError::Storage(failure) => shop_kit::storage_failure("users", failure),
        }
    }
}

fn to_proto(user: User) -> pb::User {
    pb::User {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
    }
}

/// UserService: each of its RPCs and the handler that answers it (the
/// builder does not compile without every one).
pub fn user_service(state: AppState) -> RpcService {
    pb::UserServiceRoutes::new()
        .sign_up(sign_up)
        .log_in(log_in)
        .refresh(refresh)
        .get_me(get_me)
        .get_public_keys(get_public_keys)
        .build(state)
}

/// ServiceTokenService, the services' own sign-in, beside UserService.
pub fn service_token_service(state: AppState) -> RpcService {
    pb::ServiceTokenServiceRoutes::new()
        .issue_service_token(issue_service_token)
        .build(state)
}

pub async fn sign_up(
    State(state): State<AppState>,
    Valid(request): Valid<pb::SignUpRequest>,
) -> Result<ConnectResponse<pb::SignUpResponse>, ConnectError> {
    let (user, session) = state
        .accounts
        .sign_up(
            &request.email,
            request.password,
            &request.display_name,
            // A hashing slot is waited for within the caller's time.
            CallContext::deadline(),
        )
        .await?;
    Ok(ConnectResponse::new(pb::SignUpResponse {
        user: Some(to_proto(user)),
        session: Some(session),
    }))
}

pub async fn log_in(
    State(state): State<AppState>,
    Valid(request): Valid<pb::LogInRequest>,
) -> Result<ConnectResponse<pb::LogInResponse>, ConnectError> {
    let (user, session) = state
        .accounts
        .log_in(&request.email, request.password, CallContext::deadline())
        .await?;
    Ok(ConnectResponse::new(pb::LogInResponse {
        user: Some(to_proto(user)),
        session: Some(session),
    }))
}

pub async fn refresh(
    State(state): State<AppState>,
    Valid(request): Valid<pb::RefreshRequest>,
) -> Result<ConnectResponse<pb::RefreshResponse>, ConnectError> {
    let session = state.accounts.refresh(&request.refresh_token).await?;
    Ok(ConnectResponse::new(pb::RefreshResponse {
        session: Some(session),
    }))
}

pub async fn get_me(
    caller: Caller,
    State(state): State<AppState>,
    Valid(_request): Valid<pb::GetMeRequest>,
) -> Result<ConnectResponse<pb::GetMeResponse>, ConnectError> {
    let user = state
        .accounts
        .store()
        .find_by_id(&caller.user_id)
        .await?
        .ok_or(UsersError::UnknownUser)?;
    Ok(ConnectResponse::new(pb::GetMeResponse {
        user: Some(to_proto(user)),
    }))
}

pub async fn issue_service_token(
    State(state): State<AppState>,
    CertifiedService(certified): CertifiedService,
    Valid(request): Valid<pb::IssueServiceTokenRequest>,
) -> Result<ConnectResponse<pb::IssueServiceTokenResponse>, ConnectError> {
    // The kit checked the certificate or, without one, the shared secret
    // (the contract's `shop_secret` caller), after counting the call like a
    // sign-in (its rate class): a secret anyone may try to guess.
    let proof = match &certified {
        Some(service) => ServiceProof::Certificate(service),
        None => ServiceProof::SharedSecret,
    };
    let (access_token, lifetime) = state
        .accounts
        .issue_service_token(&request.service_name, proof)?;
    Ok(ConnectResponse::new(pb::IssueServiceTokenResponse {
        access_token,
        expires_in: Some(duration(lifetime)),
    }))
}

pub async fn get_public_keys(
    State(state): State<AppState>,
    Valid(_request): Valid<pb::GetPublicKeysRequest>,
) -> Result<ConnectResponse<pb::GetPublicKeysResponse>, ConnectError> {
    let key = state.accounts.issuer().public_key();
    Ok(ConnectResponse::new(pb::GetPublicKeysResponse {
        keys: vec![pb::Jwk {
            kty: key.kty.to_owned(),
            crv: key.crv.to_owned(),
            x: key.x.clone(),
            kid: key.kid.clone(),
            r#use: key.usage.to_owned(),
            alg: key.alg.to_owned(),
        }],
    }))
}

/// A lifetime as `google.protobuf.Duration`.
pub(crate) fn duration(lifetime: std::time::Duration) -> shop_proto::wkt::Duration {
    shop_proto::wkt::Duration {
        seconds: i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(lifetime.subsec_nanos()).unwrap_or(0),
    }
}
