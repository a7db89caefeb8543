//! What is drawn over a mixed picture: still images as compositor inputs (backgrounds,
//! placeholders, text-watermark boxes) and the watermark slots after the compositor (text by
//! `textoverlay`, images with their transparency by `gdkpixbufoverlay`), changed live.

use crate::gst_util::{capsfilter, link_chain, make};
use anyhow::{Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use hearth_media_proto::layout::Placement;
use hearth_media_proto::Watermark;
use std::path::Path;

/// Watermarks of each kind a mix can show at once.
pub const MAX_TEXT: usize = 4;
pub const MAX_IMAGE: usize = 4;
/// Watermark boxes sit above every cell.
const WATERMARK_Z: u32 = 10_000;

/// A compositor input of its own (an image or a solid box): its elements and its pad.
pub struct Source {
    elements: Vec<gst::Element>,
    pub pad: gst::Pad,
}

impl Source {
    pub fn remove(self, pipeline: &gst::Pipeline, comp: &gst::Element) {
        for e in &self.elements {
            let _ = e.set_state(gst::State::Null);
        }
        comp.release_request_pad(&self.pad);
        for e in &self.elements {
            let _ = pipeline.remove(e);
        }
    }
}

/// Puts a compositor pad where a placement says.
pub fn place_pad(pad: &gst::Pad, p: &Placement, alpha: f64) {
    pad.set_property("xpos", p.x);
    pad.set_property("ypos", p.y);
    pad.set_property("width", p.width as i32);
    pad.set_property("height", p.height as i32);
    pad.set_property("zorder", p.zorder + 1);
    pad.set_property("alpha", alpha);
    pad.set_property_from_str(
        "sizing-policy",
        if p.fit == hearth_media_proto::layout::Fit::Pad {
            "keep-aspect-ratio"
        } else {
            "none"
        },
    );
}

/// A still image (PNG/JPEG file) as a live compositor input placed at `p`.
pub fn image(
    pipeline: &gst::Pipeline,
    comp: &gst::Element,
    path: &Path,
    p: &Placement,
) -> Result<Source> {
    let src = make("filesrc")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let dec = make("decodebin")?;
    let conv = make("videoconvert")?;
    let scale = make("videoscale")?;
    let freeze = make("imagefreeze")?;
    freeze.set_property("is-live", true);
    let elements = vec![src, dec, conv, scale, freeze];
    for e in &elements {
        pipeline.add(e)?;
    }
    let [src, dec, conv, scale, freeze] = &elements[..] else {
        unreachable!("five elements")
    };
    src.link(dec)?;
    link_chain(&[conv, scale, freeze])?;
    let conv_weak = conv.downgrade();
    dec.connect_pad_added(move |_, pad| {
        if let Some(conv) = conv_weak.upgrade() {
            if let Some(sink) = conv.static_pad("sink") {
                let _ = pad.link(&sink);
            }
        }
    });
    attach(pipeline, comp, elements, p)
}

/// A solid box of `rgb` as a live compositor input placed at `p`.
fn solid(pipeline: &gst::Pipeline, comp: &gst::Element, rgb: u32, p: &Placement) -> Result<Source> {
    let src = make("videotestsrc")?;
    src.set_property("is-live", true);
    src.set_property_from_str("pattern", "solid-color");
    src.set_property("foreground-color", 0xFF00_0000u32 | rgb);
    let caps = capsfilter(
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", p.width.max(2) as i32)
            .field("height", p.height.max(2) as i32)
            .build(),
    )?;
    for e in [&src, &caps] {
        pipeline.add(e)?;
    }
    src.link(&caps)?;
    attach(pipeline, comp, vec![src, caps], p)
}

fn attach(
    _pipeline: &gst::Pipeline,
    comp: &gst::Element,
    elements: Vec<gst::Element>,
    p: &Placement,
) -> Result<Source> {
    let pad = comp
        .request_pad_simple("sink_%u")
        .context("compositor pad for an image")?;
    place_pad(&pad, p, p.alpha);
    elements
        .last()
        .and_then(|e| e.static_pad("src"))
        .expect("a source has a src pad")
        .link(&pad)?;
    for e in &elements {
        e.sync_state_with_parent()?;
    }
    Ok(Source { elements, pad })
}

/// The watermark slots of a mix: fixed elements after the compositor (idle ones pass frames
/// through untouched) and the boxes behind text watermarks with a background colour.
pub struct Watermarks {
    texts: Vec<gst::Element>,
    images: Vec<gst::Element>,
    boxes: Vec<Source>,
}

impl Watermarks {
    /// Adds the slots after `from`; returns them and the new end of the chain.
    pub fn build(pipeline: &gst::Pipeline, from: &gst::Element) -> Result<(Self, gst::Element)> {
        let mut texts = Vec::new();
        let mut images = Vec::new();
        let mut chain = vec![from.clone()];
        for _ in 0..MAX_TEXT {
            let t = make("textoverlay")?;
            t.set_property("silent", true);
            t.set_property("auto-resize", false);
            t.set_property("draw-outline", false);
            t.set_property("draw-shadow", false);
            t.set_property("shaded-background", false);
            t.set_property_from_str("halignment", "left");
            t.set_property_from_str("valignment", "top");
            t.set_property_from_str("wrap-mode", "none");
            t.set_property("xpad", 0i32);
            t.set_property("ypad", 0i32);
            chain.push(t.clone());
            texts.push(t);
        }
        for _ in 0..MAX_IMAGE {
            let i = make("gdkpixbufoverlay")?;
            i.set_property("alpha", 0.0f64);
            chain.push(i.clone());
            images.push(i);
        }
        for e in &chain[1..] {
            pipeline.add(e)?;
        }
        let refs: Vec<&gst::Element> = chain.iter().collect();
        link_chain(&refs)?;
        let end = chain.last().expect("slots").clone();
        Ok((
            Watermarks {
                texts,
                images,
                boxes: Vec::new(),
            },
            end,
        ))
    }

    /// Shows `list` (images fetched to local files), replacing what was shown.
    pub fn apply(
        &mut self,
        pipeline: &gst::Pipeline,
        comp: &gst::Element,
        list: &[Watermark],
    ) -> Result<()> {
        for b in self.boxes.drain(..) {
            b.remove(pipeline, comp);
        }
        let (mut ti, mut ii) = (0, 0);
        for w in list {
            match w {
                Watermark::Text {
                    text,
                    x,
                    y,
                    width,
                    height,
                    font_size,
                    color,
                    background,
                    zorder,
                } => {
                    let Some(t) = self.texts.get(ti) else {
                        continue;
                    };
                    ti += 1;
                    t.set_property("text", text.as_str());
                    t.set_property("font-desc", format!("Sans {font_size}px"));
                    t.set_property("color", 0xFF00_0000u32 | color);
                    t.set_property("deltax", *x as i32);
                    t.set_property("deltay", *y as i32);
                    t.set_property("silent", false);
                    if let Some(rgb) = background {
                        let p = Placement {
                            user: String::new(),
                            stream: hearth_media_proto::layout::Stream::Main,
                            x: *x as i32,
                            y: *y as i32,
                            width: *width,
                            height: *height,
                            zorder: WATERMARK_Z + zorder,
                            alpha: 1.0,
                            fit: hearth_media_proto::layout::Fit::Stretch,
                            image: None,
                            has_video: false,
                            crop: None,
                        };
                        self.boxes.push(solid(pipeline, comp, *rgb, &p)?);
                    }
                }
                Watermark::Image {
                    image,
                    x,
                    y,
                    width,
                    height,
                    ..
                } => {
                    let Some(i) = self.images.get(ii) else {
                        continue;
                    };
                    ii += 1;
                    i.set_property("location", image.as_str());
                    i.set_property("offset-x", *x as i32);
                    i.set_property("offset-y", *y as i32);
                    i.set_property("overlay-width", *width as i32);
                    i.set_property("overlay-height", *height as i32);
                    i.set_property("alpha", 1.0f64);
                }
            }
        }
        for t in &self.texts[ti..] {
            t.set_property("silent", true);
        }
        for i in &self.images[ii..] {
            i.set_property("alpha", 0.0f64);
        }
        Ok(())
    }
}
