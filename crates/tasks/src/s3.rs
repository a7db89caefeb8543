//! Just enough of the S3 API for recordings: HEAD a bucket (to refuse bad credentials or a
//! missing bucket at create) and PUT an object, signed with AWS Signature V4, path-style, on
//! any S3-compatible endpoint.

use bytes::Bytes;
use hearth_outbound::Checked;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Bucket {
    /// The endpoint as checked by the outbound rules (scheme, host, port).
    endpoint: Checked,
    /// One client for the task's life (connections are reused between uploads).
    client: reqwest::Client,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

/// Why an S3 call failed; `retry` says whether trying again may help.
#[derive(Debug)]
pub struct S3Error {
    pub message: String,
    pub retry: bool,
}

impl std::fmt::Display for S3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// RFC 3986 unreserved characters stay; everything else is %-encoded (and `/` in keys).
const KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

const TIMEOUT: Duration = Duration::from_secs(60);

impl Bucket {
    pub fn new(
        endpoint: Checked,
        region: String,
        bucket: String,
        access_key: String,
        secret_key: String,
    ) -> Self {
        let client = endpoint.client(TIMEOUT);
        Bucket {
            endpoint,
            client,
            region,
            bucket,
            access_key,
            secret_key,
        }
    }

    fn path(&self, key: &str) -> String {
        let base = self.endpoint.url.path().trim_end_matches('/');
        let mut p = format!("{base}/{}", utf8_percent_encode(&self.bucket, KEY_SET));
        if !key.is_empty() {
            p.push('/');
            let parts: Vec<String> = key
                .split('/')
                .map(|s| utf8_percent_encode(s, KEY_SET).to_string())
                .collect();
            p.push_str(&parts.join("/"));
        }
        p
    }

    /// The path-style URL of an object.
    pub fn object_url(&self, key: &str) -> String {
        let u = &self.endpoint.url;
        format!("{}://{}{}", u.scheme(), self.host(), self.path(key))
    }

    fn host(&self) -> String {
        let u = &self.endpoint.url;
        let host = u.host_str().unwrap_or_default();
        match u.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    }

    /// Checks that the bucket exists and the credentials are accepted.
    pub async fn probe(&self) -> Result<(), S3Error> {
        let r = self.send("HEAD", "", Bytes::new(), None).await?;
        match r.status().as_u16() {
            200..=299 => Ok(()),
            301 | 400 => Err(fatal(format!(
                "the storage endpoint refused bucket {:?} (HTTP {}): check Region and EndpointUrl",
                self.bucket,
                r.status().as_u16()
            ))),
            403 => Err(fatal(
                "the storage refused the credentials (HTTP 403): check AccessKey and SecretKey"
                    .into(),
            )),
            404 => Err(fatal(format!("bucket {:?} does not exist", self.bucket))),
            s => Err(S3Error {
                message: format!("the storage answered HTTP {s}"),
                retry: s >= 500,
            }),
        }
    }

    /// Stores `body` at `key`.
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), S3Error> {
        let r = self.send("PUT", key, body, Some(content_type)).await?;
        let s = r.status().as_u16();
        if (200..300).contains(&s) {
            return Ok(());
        }
        let text = r.text().await.unwrap_or_default();
        Err(S3Error {
            message: format!(
                "PUT {key}: HTTP {s}: {}",
                text.chars().take(300).collect::<String>()
            ),
            // 4xx other than throttling will not get better by itself.
            retry: s >= 500 || s == 429 || s == 408,
        })
    }

    async fn send(
        &self,
        method: &str,
        key: &str,
        body: Bytes,
        content_type: Option<&str>,
    ) -> Result<reqwest::Response, S3Error> {
        let now = time::OffsetDateTime::now_utc();
        let amz_date = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let date = &amz_date[..8];
        let payload_hash = hex::encode(Sha256::digest(&body));
        let path = self.path(key);
        let host = self.host();
        let mut headers: Vec<(&str, String)> = vec![
            ("host", host.clone()),
            ("x-amz-content-sha256", payload_hash.clone()),
            ("x-amz-date", amz_date.clone()),
        ];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct.to_owned()));
        }
        headers.sort_by(|a, b| a.0.cmp(b.0));
        let canonical_headers: String = headers
            .iter()
            .map(|(k, v)| format!("{k}:{}\n", v.trim()))
            .collect();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| *k).collect();
        let signed = signed.join(";");
        let canonical =
            format!("{method}\n{path}\n\n{canonical_headers}\n{signed}\n{payload_hash}");
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let k_date = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        let k_signing = hmac(&k_service, b"aws4_request");
        let signature = hex::encode(hmac(&k_signing, to_sign.as_bytes()));
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.access_key
        );
        let mut url = self.endpoint.url.clone();
        url.set_path(&path);
        url.set_query(None);
        let mut req = self
            .client
            .request(method.parse().expect("valid method"), url)
            .header("authorization", auth);
        for (k, v) in &headers {
            if *k != "host" {
                req = req.header(*k, v);
            }
        }
        if method == "PUT" {
            req = req.body(body);
        }
        req.send().await.map_err(|e| S3Error {
            message: format!("the storage endpoint {} is unreachable: {e}", self.host()),
            retry: true,
        })
    }
}

fn fatal(message: String) -> S3Error {
    S3Error {
        message,
        retry: false,
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}
