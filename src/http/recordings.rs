//! `/api/record/start|stop` and `/api/recordings[/NAME]`: what the operator
//! (or whoever has the operator secret) may do with recordings over HTTP.

use tiny_http::Method;

use super::signaling::Refusal;
use super::{Body, Reply};
use crate::media::record::policy::camera_of;
use crate::media::record::Recordings;

/// Whether `path` is one of ours, for the router.
pub fn handles(path: &str) -> bool {
    path.starts_with("/api/record/")
        || path == "/api/recordings"
        || path.starts_with("/api/recordings/")
}

/// Answers a request for `path`; `allowed` is whether it carried the
/// operator's rights (checked by the caller, which counts wrong secrets).
pub fn route(
    recordings: &Recordings,
    method: &Method,
    path: &str,
    allowed: bool,
) -> Result<Reply, Refusal> {
    let forbidden = || {
        Refusal::new(
            403,
            "recordings need the operator secret (?secret= or Authorization: Bearer)",
        )
    };
    match (method, path) {
        (Method::Post, "/api/record/start" | "/api/record/stop") => {
            if !allowed {
                return Err(forbidden());
            }
            let on = path.ends_with("start");
            recordings
                .set_recording(on)
                .map_err(|reason| Refusal::new(503, reason.to_string()))?;
            Ok(Reply::json(200, &serde_json::json!({ "recording": on })))
        }
        (Method::Get, "/api/recordings") => {
            if !allowed {
                return Err(forbidden());
            }
            let files: Vec<serde_json::Value> = recordings
                .list()
                .into_iter()
                .map(|f| {
                    let url = format!("/api/recordings/{}", f.name);
                    // Recordings from before cameras had names name none.
                    let camera = camera_of(&f.name);
                    serde_json::json!({ "name": f.name, "camera": camera, "bytes": f.bytes, "url": url })
                })
                .collect();
            Ok(Reply::json(
                200,
                &serde_json::json!({ "recording": recordings.status(), "files": files }),
            ))
        }
        (Method::Get, _) if path.starts_with("/api/recordings/") => {
            if !allowed {
                return Err(forbidden());
            }
            let name = &path["/api/recordings/".len()..];
            let (file, len) = recordings.open(name).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Refusal::new(404, format!("no recording {name:?}")),
                _ => Refusal::new(500, format!("opening {name}: {e}")),
            })?;
            let mut reply = Reply::new(200, "video/mp4", Vec::new()).with_header(
                "Content-Disposition",
                format!("attachment; filename=\"{name}\""),
            );
            reply.body = Body::File(file, len);
            Ok(reply)
        }
        _ if matches!(
            path,
            "/api/record/start" | "/api/record/stop" | "/api/recordings"
        ) || path.starts_with("/api/recordings/") =>
        {
            Err(Refusal::new(405, format!("{method} not allowed on {path}")))
        }
        _ => Err(Refusal::new(404, format!("no such resource: {path}"))),
    }
}
