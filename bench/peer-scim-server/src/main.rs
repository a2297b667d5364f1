//! A peer SCIM server for `roster-bench --scenario peer`: the `scim-server` crate's operation
//! handler over its in-memory storage, behind axum. It serves `POST /Users`, `GET /Users/{id}`
//! and `GET /healthz`; a bearer token is accepted and ignored (the crate has no HTTP layer,
//! so no token check of its own).
//!
//!   peer-scim-server PORT        (0 for any free port; prints its address when ready)

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use scim_server::ScimServer;
use scim_server::multi_tenant::ScimOperation;
use scim_server::operation_handler::{
    ScimOperationHandler, ScimOperationRequest, ScimOperationResponse,
};
use scim_server::providers::StandardResourceProvider;
use scim_server::resource_handlers::create_user_resource_handler;
use scim_server::storage::InMemoryStorage;
use serde_json::{Value, json};

type Handler = Arc<ScimOperationHandler<StandardResourceProvider<InMemoryStorage>>>;

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// The crate's User resource type over its in-memory storage, as its examples set it up.
fn scim_handler() -> Result<Handler, Box<dyn std::error::Error>> {
    let provider = StandardResourceProvider::new(InMemoryStorage::new());
    let mut server = ScimServer::new(provider)?;
    let schema = server
        .get_schema_by_id(USER_SCHEMA)
        .ok_or("the crate ships the core User schema")?
        .clone();
    server.register_resource_type(
        "User",
        create_user_resource_handler(schema),
        vec![ScimOperation::Create, ScimOperation::Read],
    )?;
    Ok(Arc::new(ScimOperationHandler::new(server)))
}

/// The HTTP status of a failed operation, from the crate's error code.
fn error_status(response: &ScimOperationResponse) -> StatusCode {
    let message = response.error.as_deref().unwrap_or_default();
    // A duplicate userName comes back as a provider error with no code of its own.
    if message.contains("Duplicate attribute") {
        return StatusCode::CONFLICT;
    }
    match response.error_code.as_deref() {
        Some("RESOURCE_NOT_FOUND") => StatusCode::NOT_FOUND,
        Some(
            "VALIDATION_ERROR"
            | "INVALID_REQUEST"
            | "SCHEMA_NOT_FOUND"
            | "UNSUPPORTED_RESOURCE_TYPE"
            | "UNSUPPORTED_OPERATION",
        ) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    response
}

/// The operation's resource (with its ETag) on success, else a SCIM error body.
fn reply(response: ScimOperationResponse, success: StatusCode) -> Response {
    if !response.success {
        let status = error_status(&response);
        return scim_json(
            status,
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": status.as_u16().to_string(),
                "detail": response.error.unwrap_or_default(),
            }),
        );
    }
    let mut http = scim_json(success, &response.data.unwrap_or(Value::Null));
    if let Some(etag) = response
        .metadata
        .additional
        .get("etag")
        .and_then(Value::as_str)
        && let Ok(value) = HeaderValue::from_str(etag)
    {
        http.headers_mut().insert(header::ETAG, value);
    }
    http
}

async fn create_user(State(handler): State<Handler>, body: Bytes) -> Response {
    let Ok(data) = serde_json::from_slice::<Value>(&body) else {
        return scim_json(
            StatusCode::BAD_REQUEST,
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidSyntax",
            }),
        );
    };
    let response = handler
        .handle_operation(ScimOperationRequest::create("User", data))
        .await;
    reply(response, StatusCode::CREATED)
}

async fn get_user(State(handler): State<Handler>, Path(id): Path<String>) -> Response {
    let response = handler
        .handle_operation(ScimOperationRequest::get("User", id))
        .await;
    reply(response, StatusCode::OK)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: peer-scim-server PORT   (0 for any free port)");
            std::process::exit(2);
        }
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/Users", post(create_user))
        .route("/Users/{id}", get(get_user))
        .with_state(scim_handler()?);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "peer-scim-server listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
