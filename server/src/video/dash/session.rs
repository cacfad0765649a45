//! GetDASHStreamingSessionURL: the shared session members
//! (`streaming::request`) and DASH's own DisplayFragmentNumber; the
//! answer is the manifest's URL with the session sealed into its token.

use std::sync::Arc;

use axum::response::Response;
use serde_json::json;

use crate::aws::request::Req;
use crate::aws::{AwsError, codec};
use crate::video::streaming::Streaming;
use crate::video::streaming::request::{Members, Request, one_of};
use crate::video::streaming::token::Format;

const MEMBERS: Members = Members {
    selector: "DASHFragmentSelector",
    max_results: ("MaxManifestFragmentResults", "maxManifestFragmentResults"),
};

pub async fn get_dash_streaming_session_url(
    streaming: Arc<Streaming>,
    mut req: Req,
    // `scheme://host` of the request, which the URLs handed out are on.
    base: Option<String>,
) -> Result<Response, AwsError> {
    let number = one_of(
        &mut req,
        "DisplayFragmentNumber",
        "displayFragmentNumber",
        &["ALWAYS", "NEVER"],
    )?;
    let request = Request::read(&mut req, &MEMBERS)?;
    let session = request
        .start(&streaming, |anchor| Format::Dash {
            display_fragment_number: number == Some("ALWAYS"),
            anchor,
        })
        .await?;
    let token = streaming.seal(&session);
    let base = base.unwrap_or_else(|| "http://127.0.0.1:4567".into());
    Ok(codec::json_ok(
        json!({
            "DASHStreamingSessionURL":
                format!("{base}/dash/v1/getDASHManifest.mpd?SessionToken={token}")
        })
        .to_string(),
    ))
}
