//! Images a layout or a watermark names by URL (background, placeholders, cell backgrounds,
//! watermarks): fetched once
//! under the outbound rules, at most 5 MB, JPG or PNG by content, and handed to the worker as
//! local files.

use hearth_api::media::TaskError;
use hearth_media_proto::layout::Layout;
use hearth_media_proto::Watermark;
use hearth_outbound::Rules;
use std::path::Path;
use std::time::Duration;

const MAX_IMAGE_BYTES: usize = 5 << 20;

/// Replaces every image URL of `layout` by a local file under `dir`.
pub async fn fetch_layout(
    rules: &Rules,
    mut layout: Layout,
    dir: &Path,
) -> Result<Layout, TaskError> {
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    if let Some(u) = layout.background_image.take() {
        layout.background_image = Some(fetch(rules, &u, dir, &format!("image-{}", next())).await?);
    }
    if let Some(u) = layout.placeholder_image.take() {
        layout.placeholder_image = Some(fetch(rules, &u, dir, &format!("image-{}", next())).await?);
    }
    for c in &mut layout.cells {
        if let Some(u) = c.image.take() {
            c.image = Some(fetch(rules, &u, dir, &format!("image-{}", next())).await?);
        }
    }
    Ok(layout)
}

/// Replaces the image URL of every image watermark by a local file under `dir`.
pub async fn fetch_watermarks(
    rules: &Rules,
    mut list: Vec<Watermark>,
    dir: &Path,
) -> Result<Vec<Watermark>, TaskError> {
    // Names unique across updates: a running worker may still read an older file.
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    for (i, w) in list.iter_mut().enumerate() {
        if let Watermark::Image { image, .. } = w {
            *image = fetch(rules, image, dir, &format!("watermark-{stamp}-{i}")).await?;
        }
    }
    Ok(list)
}

async fn fetch(rules: &Rules, url: &str, dir: &Path, name: &str) -> Result<String, TaskError> {
    let bad = |m: String| TaskError::Invalid(format!("image {url}: {m}"));
    let checked = rules
        .check(url, &["http", "https"])
        .await
        .map_err(|e| bad(e.to_string()))?;
    let resp = checked
        .client(Duration::from_secs(15))
        .get(checked.url.clone())
        .send()
        .await
        .map_err(|e| bad(format!("cannot be fetched: {e}")))?;
    if !resp.status().is_success() {
        return Err(bad(format!("HTTP {}", resp.status().as_u16())));
    }
    if resp
        .content_length()
        .is_some_and(|l| l as usize > MAX_IMAGE_BYTES)
    {
        return Err(bad("larger than 5 MB".into()));
    }
    let body = resp.bytes().await.map_err(|e| bad(e.to_string()))?;
    if body.len() > MAX_IMAGE_BYTES {
        return Err(bad("larger than 5 MB".into()));
    }
    let ext = if body.starts_with(b"\x89PNG\r\n\x1a\n") {
        "png"
    } else if body.starts_with(&[0xff, 0xd8, 0xff]) {
        "jpg"
    } else {
        return Err(bad("is neither a PNG nor a JPEG image".into()));
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| TaskError::Failed(e.to_string()))?;
    let path = dir.join(format!("{name}.{ext}"));
    tokio::fs::write(&path, &body)
        .await
        .map_err(|e| TaskError::Failed(e.to_string()))?;
    Ok(path.to_string_lossy().into_owned())
}
