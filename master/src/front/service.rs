//! The master as a [`Service`]: each request routed to its operation, its
//! errors answered as the original answers them.

use http1::metrics::{method_label, Timer};
use http1::{response, Answer, Conn, HttpError, RequestHead, Service, Timeouts};
use mkv_s3 as s3;

use crate::error::MasterError;
use crate::front::request::{Req, SERVER};
use crate::front::router::{self, Route};
use crate::metrics::METRICS;
use crate::plain::{delete, get, list, put, rebalance};
use crate::state::Local;

/// Why a request failed: a plain API request's error (or the connection's,
/// before a request was read), or an S3 request's.
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error(transparent)]
    Plain(#[from] MasterError),
    #[error(transparent)]
    S3(#[from] s3::error::Error),
}

impl From<HttpError> for FrontError {
    fn from(e: HttpError) -> FrontError {
        FrontError::Plain(e.into())
    }
}

impl FrontError {
    pub fn status(&self) -> Option<u16> {
        match self {
            FrontError::Plain(e) => e.status(),
            FrontError::S3(e) => e.status(),
        }
    }
}

impl Service for Local {
    type Error = FrontError;

    fn timeouts(&self) -> Timeouts {
        self.app.timeouts
    }

    fn shutting_down(&self) -> bool {
        self.app.shutdown.is_triggered()
    }

    fn error_status(&self, e: &FrontError) -> Option<u16> {
        e.status()
    }

    /// The original answers most refusals with an empty body; the rest get
    /// a line saying why.
    fn write_error(
        &self,
        out: &mut Vec<u8>,
        code: u16,
        e: &FrontError,
        head: Option<&RequestHead>,
        keep_alive: bool,
    ) {
        let http10 = head.is_some_and(|h| h.http10);
        let s3 = match e {
            FrontError::S3(e) => Some(e.to_s3()),
            FrontError::Plain(e) if head.is_some_and(|h| self.is_s3(h)) => {
                Some(s3::error::of_store(e))
            }
            FrontError::Plain(_) => None,
        };
        if let Some(s3) = s3 {
            let resource = head.map(|h| String::from_utf8_lossy(h.path()).into_owned());
            let resource = resource.unwrap_or_default();
            let _ = s3::error::write(out, &s3, &resource, keep_alive, http10);
            return;
        }
        let (content_type, text) = match code {
            403 | 404 | 405 | 409 | 411 => (None, String::new()),
            _ => (Some("text/plain"), format!("{e}\n")),
        };
        let body = text.as_bytes();
        let _ = response::simple(out, code, SERVER, content_type, body, keep_alive, http10);
    }

    async fn call(&self, conn: &mut Conn, head: &RequestHead) -> Result<Answer, FrontError> {
        let mut key = std::mem::take(&mut conn.scratch);
        let timer = Timer::start(conn, head);
        let s3 = self.is_s3(head);
        let result = self.dispatch(conn, head, &mut key, s3).await;
        // Over a shared index, the key locks the request let go are free
        // in the database before the client hears the answer.
        crate::ops::locks::released().await;
        let done = timer.finish(conn, result.as_ref().map_err(FrontError::status));
        let api = if s3 { "s3" } else { "mkv" };
        METRICS.http.observe(api, method_label(head), &done);
        if self.app.cluster.verbose {
            let key = String::from_utf8_lossy(&key);
            let method = head.method_name();
            let ms = format!("{:.3}", done.secs * 1e3);
            let (status, bytes_in, bytes_out) = (done.status, done.bytes_in, done.bytes_out);
            match &result {
                Ok(_) => tracing::info!(method, %key, status, bytes_in, bytes_out, %ms, "request"),
                Err(e) => {
                    tracing::info!(method, %key, status, bytes_in, %ms, error = %e, "request")
                }
            }
        }
        conn.scratch = key;
        result
    }
}

impl Local {
    /// Whether a request is for the S3 API.
    fn is_s3(&self, head: &RequestHead) -> bool {
        self.s3_only || s3::router::is_s3(head)
    }

    async fn dispatch(
        &self,
        conn: &mut Conn,
        head: &RequestHead,
        key: &mut Vec<u8>,
        s3: bool,
    ) -> Result<Answer, FrontError> {
        let keep_alive = head.keep_alive && !self.shutting_down();
        if s3 {
            // Logged by the path as sent (the query may carry a signature).
            key.clear();
            key.extend_from_slice(head.path());
            let config = &self.app.s3;
            return Ok(s3::serve(&self.store, config, conn, head, keep_alive).await?);
        }
        let op = router::route(head, key)?;
        let req = Req {
            store: &self.store,
            head,
            key,
            keep_alive,
        };
        let answer = match op {
            // A HEAD's answer is a GET's (a 302 has no body either way).
            Route::Get | Route::Head => get::serve(conn, &req).await,
            Route::Put => put::serve(conn, &req).await,
            Route::Delete => delete::delete(conn, &req).await,
            Route::Unlink => delete::unlink(conn, &req).await,
            Route::Rebalance => rebalance::serve(conn, &req).await,
            Route::List {
                unlinked,
                start,
                limit,
            } => list::serve(conn, &req, unlinked, &start, limit).await,
        };
        Ok(answer?)
    }
}
