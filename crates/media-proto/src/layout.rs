//! Mixed-picture layouts (MixLayoutParams): what the operator asked for ([`Layout`]) and where
//! each user's picture goes on the canvas for the users present ([`place`]).

use serde::{Deserialize, Serialize};

/// TRTC's template layouts and the custom one (MixLayoutMode 1–4).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LayoutMode {
    Floating,
    ScreenShare,
    Grid,
    Custom,
}

/// How a picture fills a cell whose aspect ratio differs (RenderMode).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// 0: stretch to the cell.
    Stretch,
    /// 1: crop to the cell's aspect ratio, then scale.
    Crop,
    /// 2: keep the aspect ratio, bars of background.
    Pad,
    /// 3: crop at most 20 % of width or height, then stretch.
    SmartCrop,
}

/// A stream of a user: main (camera) or sub (screen).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Main,
    Sub,
}

/// A cell of a custom layout (MixLayout).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CustomCell {
    pub top: u32,
    pub left: u32,
    pub width: u32,
    pub height: u32,
    /// `None`: the next user in entry order not named by another cell.
    pub user: Option<String>,
    /// 0 opaque … 255 transparent.
    pub alpha: u32,
    pub fit: Fit,
    pub stream: Stream,
    pub layer: u32,
    /// The cell's background image: a URL as the API took it, a local file once fetched.
    pub image: Option<String>,
    /// The part of the user's picture shown (McuCustomCrop): x, y, width, height in its pixels.
    #[serde(default)]
    pub crop: Option<[u32; 4]>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Layout {
    pub mode: LayoutMode,
    pub cells: Vec<CustomCell>,
    /// 0xRRGGBB.
    pub background: u32,
    /// A URL as the API took it, a local file once fetched (also the other images).
    pub background_image: Option<String>,
    /// Floating and screen-share: who gets the big window.
    pub big_user: Option<String>,
    pub big_stream: Stream,
    /// Floating: 1 = big window on the right (screen share).
    pub big_right: bool,
    pub fit: Fit,
    /// PlaceHolderMode 1: a user without video holds a cell showing this image (or background).
    pub placeholder: bool,
    pub placeholder_image: Option<String>,
    /// PureAudioDisableLayout: audio-only users take no cell.
    pub audio_only_no_cell: bool,
    /// Pictures at most (0: [`MAX_CELLS`]); a relay's templates show 16.
    #[serde(default)]
    pub max_cells: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            mode: LayoutMode::Grid,
            cells: Vec::new(),
            background: 0,
            background_image: None,
            big_user: None,
            big_stream: Stream::Main,
            big_right: false,
            fit: Fit::Crop,
            placeholder: false,
            placeholder_image: None,
            audio_only_no_cell: false,
            max_cells: 0,
        }
    }
}

/// A user present in the room, in entry order, as the layout sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Present {
    pub user: String,
    pub stream: Stream,
    /// Publishes (unmuted) video on this stream.
    pub video: bool,
}

/// Where one picture goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub user: String,
    pub stream: Stream,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub zorder: u32,
    /// 0.0 transparent … 1.0 opaque (compositor's alpha).
    pub alpha: f64,
    pub fit: Fit,
    /// Shown when the user has no video (placeholder or custom cell background).
    pub image: Option<String>,
    pub has_video: bool,
    /// Only this part of the picture (x, y, width, height in its pixels).
    pub crop: Option<[u32; 4]>,
}

/// Pictures at most in a mix (SubscribeStreamUserIds: 24 videos when mixing, 25 cells).
pub const MAX_CELLS: usize = 25;

/// Places the present users (entry order) on a `w`×`h` canvas.
pub fn place(layout: &Layout, present: &[Present], w: u32, h: u32) -> Vec<Placement> {
    let max = match layout.max_cells {
        0 => MAX_CELLS,
        n => n.min(MAX_CELLS),
    };
    let shown: Vec<&Present> = present
        .iter()
        .filter(|p| p.video || !layout.audio_only_no_cell)
        .take(max)
        .collect();
    let cell = |p: &Present, x: u32, y: u32, cw: u32, ch: u32, z: u32| Placement {
        user: p.user.clone(),
        stream: p.stream,
        x: x as i32,
        y: y as i32,
        width: cw.max(2),
        height: ch.max(2),
        zorder: z,
        alpha: 1.0,
        fit: layout.fit,
        image: layout
            .placeholder_image
            .clone()
            .filter(|_| layout.placeholder),
        has_video: p.video,
        crop: None,
    };
    match layout.mode {
        LayoutMode::Grid => {
            let n = shown.len() as u32;
            if n == 0 {
                return Vec::new();
            }
            let cols = (1..=5).find(|c| c * c >= n).unwrap_or(5);
            let rows = n.div_ceil(cols);
            let (cw, ch) = (w / cols, h / rows);
            shown
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let i = i as u32;
                    cell(p, (i % cols) * cw, (i / cols) * ch, cw, ch, 1)
                })
                .collect()
        }
        LayoutMode::Floating => {
            let Some(big) = big_index(layout, &shown) else {
                return Vec::new();
            };
            let mut out = vec![cell(shown[big], 0, 0, w, h, 1)];
            let small: Vec<&&Present> = shown
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != big)
                .map(|(_, p)| p)
                .collect();
            let per_row = if shown.len() > 17 { 5 } else { 4 };
            let (cw, ch) = (w / per_row, h / per_row);
            for (i, p) in small.iter().enumerate() {
                let (col, row) = (i as u32 % per_row, i as u32 / per_row);
                let y = h.saturating_sub((row + 1) * ch);
                out.push(cell(p, col * cw, y, cw, ch, 2));
            }
            out
        }
        LayoutMode::ScreenShare => {
            let big = big_index(layout, &shown).filter(|_| layout.big_user.is_some());
            let others: Vec<&&Present> = shown
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != big)
                .map(|(_, p)| p)
                .collect();
            // Small cells: 8 per column, two columns on the side; more go along the bottom.
            let ch = h / 8;
            let cw = w / 8;
            let side_w = 2 * cw;
            let bottom = others.len() > 16;
            let big_w = w - side_w;
            let big_h = if bottom { h - ch } else { h };
            let (big_x, side_x) = if layout.big_right {
                (side_w, 0)
            } else {
                (0, big_w)
            };
            let mut out = Vec::new();
            if let Some(b) = big {
                out.push(cell(shown[b], big_x, 0, big_w, big_h, 1));
            }
            for (i, p) in others.iter().enumerate() {
                let i = i as u32;
                let (x, y) = if i < 16 {
                    (side_x + (i / 8) * cw, (i % 8) * ch)
                } else {
                    (big_x + (i - 16) * cw, h - ch)
                };
                out.push(cell(p, x, y, cw, ch, 2));
            }
            out
        }
        LayoutMode::Custom => {
            let named: Vec<&str> = layout
                .cells
                .iter()
                .filter_map(|c| c.user.as_deref())
                .collect();
            let mut unnamed = present
                .iter()
                .filter(|p| p.stream == Stream::Main && !named.contains(&p.user.as_str()));
            let mut out = Vec::new();
            for c in layout.cells.iter().take(max) {
                let who = match &c.user {
                    Some(u) => present
                        .iter()
                        .find(|p| &p.user == u && p.stream == c.stream),
                    None => unnamed.next(),
                };
                let absent;
                let p = match (who, &c.user, &c.image) {
                    (Some(p), _, _) => p,
                    // A named user not (yet) in the room: the cell shows its image.
                    (None, Some(u), Some(_)) => {
                        absent = Present {
                            user: u.clone(),
                            stream: c.stream,
                            video: false,
                        };
                        &absent
                    }
                    _ => continue,
                };
                let w_ = c.width.min(w.saturating_sub(c.left));
                let h_ = c.height.min(h.saturating_sub(c.top));
                let mut pl = cell(p, c.left, c.top, w_, h_, c.layer + 1);
                pl.alpha = 1.0 - f64::from(c.alpha.min(255)) / 255.0;
                pl.fit = c.fit;
                pl.crop = c.crop;
                if c.image.is_some() {
                    pl.image = c.image.clone();
                }
                out.push(pl);
            }
            out
        }
    }
}

/// The big window of floating and screen-share: the named user (on the asked stream), else
/// the first.
fn big_index(layout: &Layout, shown: &[&Present]) -> Option<usize> {
    if shown.is_empty() {
        return None;
    }
    let named = layout.big_user.as_ref().and_then(|u| {
        shown
            .iter()
            .position(|p| &p.user == u && p.stream == layout.big_stream)
            .or_else(|| shown.iter().position(|p| &p.user == u))
    });
    match (layout.mode, named) {
        (_, Some(i)) => Some(i),
        (LayoutMode::Floating, None) => Some(0),
        _ => None,
    }
}

/// Parses `#RRGGBB` (BackGroundColor).
pub fn parse_color(s: &str) -> Option<u32> {
    let hex = s.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(names: &[&str]) -> Vec<Present> {
        names
            .iter()
            .map(|n| Present {
                user: n.to_string(),
                stream: Stream::Main,
                video: true,
            })
            .collect()
    }

    #[test]
    fn grid_of_two_is_side_by_side_and_four_is_two_by_two() {
        let l = Layout::default();
        let p = place(&l, &users(&["a", "b"]), 1280, 720);
        assert_eq!((p[0].x, p[0].y, p[0].width, p[0].height), (0, 0, 640, 720));
        assert_eq!((p[1].x, p[1].y), (640, 0));
        let p = place(&l, &users(&["a", "b", "c", "d"]), 1280, 720);
        assert_eq!(
            (p[3].x, p[3].y, p[3].width, p[3].height),
            (640, 360, 640, 360)
        );
        let p = place(&l, &users(&["a", "b", "c", "d", "e"]), 1200, 720);
        assert_eq!(
            (p[4].x, p[4].y, p[4].width, p[4].height),
            (400, 360, 400, 360)
        );
    }

    #[test]
    fn floating_puts_the_named_user_big_and_others_on_the_bottom_row() {
        let l = Layout {
            mode: LayoutMode::Floating,
            big_user: Some("c".into()),
            ..Layout::default()
        };
        let p = place(&l, &users(&["a", "b", "c"]), 1280, 720);
        assert_eq!(p[0].user, "c");
        assert_eq!((p[0].width, p[0].height), (1280, 720));
        assert_eq!((p[1].user.as_str(), p[1].x, p[1].y), ("a", 0, 540));
        assert_eq!((p[2].user.as_str(), p[2].x, p[2].y), ("b", 320, 540));
        assert!(p[1].zorder > p[0].zorder);
    }

    #[test]
    fn screen_share_without_a_named_user_leaves_the_big_area_empty() {
        let l = Layout {
            mode: LayoutMode::ScreenShare,
            ..Layout::default()
        };
        let p = place(&l, &users(&["a", "b"]), 1280, 720);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|c| c.x >= 960));
    }

    #[test]
    fn custom_cells_take_named_users_then_the_rest_in_entry_order() {
        let cell = |user: Option<&str>, left| CustomCell {
            top: 0,
            left,
            width: 100,
            height: 100,
            user: user.map(str::to_owned),
            alpha: 0,
            fit: Fit::Stretch,
            stream: Stream::Main,
            layer: 0,
            image: None,
            crop: None,
        };
        let l = Layout {
            mode: LayoutMode::Custom,
            cells: vec![cell(None, 0), cell(Some("a"), 100), cell(None, 200)],
            ..Layout::default()
        };
        let p = place(&l, &users(&["a", "b", "c"]), 640, 360);
        let got: Vec<(&str, i32)> = p.iter().map(|c| (c.user.as_str(), c.x)).collect();
        assert_eq!(got, vec![("b", 0), ("a", 100), ("c", 200)]);
    }

    #[test]
    fn a_named_cell_with_an_image_shows_it_before_its_user_enters() {
        let l = Layout {
            mode: LayoutMode::Custom,
            cells: vec![CustomCell {
                top: 0,
                left: 0,
                width: 100,
                height: 100,
                user: Some("late".into()),
                alpha: 0,
                fit: Fit::Stretch,
                stream: Stream::Main,
                layer: 0,
                image: Some("/tmp/wait.png".into()),
                crop: None,
            }],
            ..Layout::default()
        };
        let p = place(&l, &users(&["a"]), 640, 360);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].user, "late");
        assert!(!p[0].has_video);
        assert_eq!(p[0].image.as_deref(), Some("/tmp/wait.png"));
    }

    #[test]
    fn a_relay_grid_shows_sixteen_at_most() {
        let names: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let l = Layout {
            max_cells: 16,
            ..Layout::default()
        };
        let p = place(&l, &users(&refs), 1280, 720);
        assert_eq!(p.len(), 16);
        assert_eq!((p[15].x, p[15].y, p[15].width), (960, 540, 320));
    }

    #[test]
    fn audio_only_users_hold_a_cell_unless_disabled() {
        let mut present = users(&["a", "b"]);
        present[1].video = false;
        let mut l = Layout::default();
        assert_eq!(place(&l, &present, 640, 360).len(), 2);
        l.audio_only_no_cell = true;
        assert_eq!(place(&l, &present, 640, 360).len(), 1);
    }

    #[test]
    fn prefix_patterns_follow_trtc() {
        use crate::pattern_matches;
        assert!(pattern_matches("1.*$", "123"));
        assert!(!pattern_matches("1.*$", "23"));
        assert!(pattern_matches("1.*$", "1.*$"));
        assert!(pattern_matches("bob", "bob"));
        assert!(!pattern_matches("bob", "bobby"));
        assert_eq!(parse_color("#FFA500"), Some(0xFFA500));
        assert_eq!(parse_color("FFA500"), None);
    }
}
