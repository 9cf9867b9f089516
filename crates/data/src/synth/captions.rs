//! Human-style reference captions for a [`Scene`]: five distinct paraphrases per image.

use rand::seq::SliceRandom;
use rand::Rng;

use super::scene::{Background, Colour, Layout, Object, Scene, Shape, SizeClass, REGION_BORDERS};
use crate::tokenizer::tokenize;

/// Number of reference captions per image.
pub const CAPTIONS_PER_IMAGE: usize = 5;
/// Caption length bounds in tokens.
pub const MIN_WORDS: usize = 5;
/// Caption length bounds in tokens.
pub const MAX_WORDS: usize = 20;

fn pick<'a, R: Rng>(rng: &mut R, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn colour_word<R: Rng>(c: Colour, rng: &mut R) -> &'static str {
    match c {
        Colour::Red => "red",
        Colour::Green => "green",
        Colour::Blue => "blue",
        Colour::Yellow => "yellow",
        Colour::Orange => "orange",
        Colour::Purple => pick(rng, &["purple", "purple", "violet"]),
        Colour::Pink => "pink",
        Colour::White => "white",
        Colour::Black => "black",
    }
}

fn shape_word<R: Rng>(s: Shape, rng: &mut R) -> &'static str {
    match s {
        Shape::Circle => pick(rng, &["circle", "circle", "disk"]),
        Shape::Square => pick(rng, &["square", "square", "box"]),
        Shape::Triangle => "triangle",
        Shape::Star => "star",
        Shape::Diamond => pick(rng, &["diamond", "diamond", "rhombus"]),
        Shape::Cross => pick(rng, &["cross", "cross", "plus sign"]),
        Shape::Ring => pick(rng, &["ring", "ring", "donut"]),
    }
}

fn size_word<R: Rng>(s: SizeClass, rng: &mut R) -> &'static str {
    match s {
        SizeClass::Small => pick(rng, &["small", "little", "tiny"]),
        SizeClass::Medium => pick(rng, &["medium", "medium-sized", "mid-sized"]),
        SizeClass::Large => pick(rng, &["large", "big", "huge"]),
    }
}

fn background_word<R: Rng>(b: Background, rng: &mut R) -> &'static str {
    match b {
        Background::Gray => pick(rng, &["gray", "grey"]),
        Background::White => "white",
        Background::Black => pick(rng, &["black", "dark"]),
        Background::Beige => pick(rng, &["beige", "tan"]),
        Background::Teal => pick(rng, &["teal", "dark green"]),
    }
}

fn article(next: &str) -> &'static str {
    if next.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// Builds noun phrases for objects of one scene (size mentioned at random).
struct Phrases<'s> {
    scene: &'s Scene,
}

impl Phrases<'_> {
    /// `[size] colour shape` or `[size] shape in colour`, without article.
    fn bare<R: Rng>(&self, o: &Object, rng: &mut R) -> String {
        let size = if rng.random_bool(0.3) {
            Some(size_word(o.size, rng))
        } else {
            None
        };
        let colour = colour_word(o.colour, rng);
        let shape = shape_word(o.shape, rng);
        let mut words: Vec<&str> = Vec::with_capacity(4);
        words.extend(size);
        if rng.random_bool(0.15) {
            words.extend([shape, "in", colour]);
        } else {
            words.extend([colour, shape]);
        }
        words.join(" ")
    }

    /// Indefinite noun phrase: `a small red circle`, `an orange star`.
    fn np<R: Rng>(&self, o: &Object, rng: &mut R) -> String {
        let bare = self.bare(o, rng);
        format!("{} {bare}", article(&bare))
    }

    /// Definite short reference: `the circle`, or `the red circle` when the shape repeats.
    fn def<R: Rng>(&self, o: &Object, rng: &mut R) -> String {
        let shape = shape_word(o.shape, rng);
        let repeated = self
            .scene
            .objects
            .iter()
            .filter(|p| p.shape == o.shape)
            .count()
            > 1;
        if repeated || rng.random_bool(0.3) {
            format!("the {} {shape}", colour_word(o.colour, rng))
        } else {
            format!("the {shape}")
        }
    }

    fn background<R: Rng>(&self, rng: &mut R) -> String {
        let bg = background_word(self.scene.background, rng);
        match rng.random_range(0..3) {
            0 => format!("on a {bg} background"),
            1 => format!("against a {bg} background"),
            _ => format!("on {} {bg} backdrop", article(bg)),
        }
    }
}

/// Relation words for "first before second" along the layout axis, and the reverse.
fn forward<R: Rng>(vertical: bool, rng: &mut R) -> &'static str {
    if vertical {
        pick(rng, &["above", "over", "above"])
    } else {
        pick(
            rng,
            &[
                "to the left of",
                "left of",
                "on the left of",
                "next to",
                "beside",
            ],
        )
    }
}

fn backward<R: Rng>(vertical: bool, rng: &mut R) -> &'static str {
    if vertical {
        pick(rng, &["below", "under", "beneath"])
    } else {
        pick(
            rng,
            &["to the right of", "right of", "on the right of", "next to"],
        )
    }
}

/// `a red circle to the left of a blue square` or the reversed form.
fn relation<R: Rng>(p: &Phrases, a: &Object, b: &Object, vertical: bool, rng: &mut R) -> String {
    relation_with(p, a, b, vertical, "", rng)
}

/// [`relation`] with `copula` before the relation (`"is "`: `a red circle is to the left of a
/// blue square`); the same draws in the same order.
fn relation_with<R: Rng>(
    p: &Phrases,
    a: &Object,
    b: &Object,
    vertical: bool,
    copula: &str,
    rng: &mut R,
) -> String {
    if rng.random_bool(0.5) {
        format!(
            "{} {copula}{} {}",
            p.np(a, rng),
            forward(vertical, rng),
            p.np(b, rng)
        )
    } else {
        format!(
            "{} {copula}{} {}",
            p.np(b, rng),
            backward(vertical, rng),
            p.np(a, rng)
        )
    }
}

fn position_phrase<R: Rng>(o: &Object, size: u32, rng: &mut R) -> String {
    let s = size as f32;
    let [low, high] = REGION_BORDERS;
    let h = if o.cx < low * s {
        Some("left")
    } else if o.cx > high * s {
        Some("right")
    } else {
        None
    };
    let v = if o.cy < low * s {
        Some(pick(rng, &["top", "upper"]))
    } else if o.cy > high * s {
        Some(pick(rng, &["bottom", "lower"]))
    } else {
        None
    };
    let phrase = match (v, h) {
        (Some(v), Some(h)) => match rng.random_range(0..2) {
            0 => format!("in the {v} {h} corner"),
            _ => format!("in the {v} {h}"),
        },
        (Some(v), None) => {
            let v = if v == "upper" {
                "top"
            } else if v == "lower" {
                "bottom"
            } else {
                v
            };
            format!("{} the {v}", pick(rng, &["at", "near"]))
        }
        (None, Some(h)) => format!(
            "{} the {h}{}",
            pick(rng, &["on", "near"]),
            pick(rng, &[" side", ""])
        ),
        (None, None) => format!("in the {}", pick(rng, &["center", "middle"])),
    };
    if rng.random_bool(0.25) {
        format!("{phrase} of the {}", pick(rng, &["image", "picture"]))
    } else {
        phrase
    }
}

fn single<R: Rng>(p: &Phrases, t: usize, rng: &mut R) -> String {
    let o = &p.scene.objects[0];
    let pos = position_phrase(o, p.scene.size, rng);
    match t % 9 {
        0 => format!("{} {pos}", p.np(o, rng)),
        1 => format!("there is {} {pos}", p.np(o, rng)),
        2 => format!("{} {}", p.np(o, rng), p.background(rng)),
        3 => format!("a single {} {pos}", p.bare(o, rng)),
        4 => format!("{pos} there is {}", p.np(o, rng)),
        5 => format!(
            "{} of {} {pos}",
            pick(rng, &["an image", "a picture", "a drawing"]),
            p.np(o, rng)
        ),
        6 => format!("{} is {pos}", p.np(o, rng)),
        7 => format!(
            "one {} {} {pos}",
            p.bare(o, rng),
            pick(rng, &["sits", "is shown", "appears"])
        ),
        _ => format!(
            "{} with {} {pos}",
            p.background(rng).split_once(' ').map_or("", |x| x.1),
            p.np(o, rng)
        ),
    }
}

fn pair<R: Rng>(p: &Phrases, t: usize, rng: &mut R) -> String {
    let (a, b) = (&p.scene.objects[0], &p.scene.objects[1]);
    let vertical = p.scene.layout == Layout::Vertical;
    match t % 9 {
        0 => relation(p, a, b, vertical, rng),
        1 => format!("there is {}", relation(p, a, b, vertical, rng)),
        2 => format!("{} {}", relation(p, a, b, vertical, rng), p.background(rng)),
        3 => format!(
            "two {}, {}",
            pick(rng, &["shapes", "objects"]),
            relation(p, a, b, vertical, rng)
        ),
        4 => {
            let (x, y, rel) = if rng.random_bool(0.5) {
                (a, b, forward(vertical, rng))
            } else {
                (b, a, backward(vertical, rng))
            };
            format!(
                "{} and {}, {} is {rel} {}",
                p.np(x, rng),
                p.np(y, rng),
                p.def(x, rng),
                p.def(y, rng)
            )
        }
        5 => format!(
            "{} of {}",
            pick(rng, &["an image", "a picture", "a drawing"]),
            relation(p, a, b, vertical, rng)
        ),
        6 => relation_with(p, a, b, vertical, "is ", rng),
        7 => {
            if vertical {
                format!(
                    "{} at the top and {} at the bottom",
                    p.np(a, rng),
                    p.np(b, rng)
                )
            } else {
                format!(
                    "{} on the left and {} on the right",
                    p.np(a, rng),
                    p.np(b, rng)
                )
            }
        }
        _ => format!(
            "{} with {}",
            p.background(rng).split_once(' ').map_or("", |x| x.1),
            relation(p, a, b, vertical, rng)
        ),
    }
}

fn triple<R: Rng>(p: &Phrases, t: usize, rng: &mut R) -> String {
    let (a, b, c) = (
        &p.scene.objects[0],
        &p.scene.objects[1],
        &p.scene.objects[2],
    );
    let vertical = p.scene.layout == Layout::Vertical;
    let (first, last) = if vertical {
        ("at the top", "at the bottom")
    } else {
        ("on the left", "on the right")
    };
    match t % 8 {
        0 => format!(
            "{} {} {}, which is {} {}",
            p.np(a, rng),
            forward(vertical, rng),
            p.np(b, rng),
            forward(vertical, rng),
            p.np(c, rng)
        ),
        1 => format!(
            "from {}: {}, {} and {}",
            if vertical {
                "top to bottom"
            } else {
                "left to right"
            },
            p.np(a, rng),
            p.np(b, rng),
            p.np(c, rng)
        ),
        2 => format!(
            "{} {first}, {} in the middle and {} {last}",
            p.np(a, rng),
            p.np(b, rng),
            p.np(c, rng)
        ),
        3 => format!(
            "{} {} {}, which is {} {}",
            p.np(c, rng),
            backward(vertical, rng),
            p.np(b, rng),
            backward(vertical, rng),
            p.np(a, rng)
        ),
        4 => format!(
            "{} between {} and {}, {} {first}",
            p.np(b, rng),
            p.np(a, rng),
            p.np(c, rng),
            p.def(a, rng)
        ),
        5 => format!(
            "{} {last}, {} in the middle and {} {first}",
            p.np(c, rng),
            p.np(b, rng),
            p.np(a, rng)
        ),
        6 => format!(
            "three {} in a {}, {}, {} and {}, from {}",
            pick(rng, &["shapes", "objects"]),
            if vertical { "column" } else { "row" },
            p.np(a, rng),
            p.np(b, rng),
            p.np(c, rng),
            if vertical {
                "top to bottom"
            } else {
                "left to right"
            }
        ),
        _ => format!(
            "{} and {} {} {}",
            p.np(a, rng),
            p.np(b, rng),
            forward(vertical, rng),
            p.np(c, rng)
        ),
    }
}

/// Capitalises and punctuates like a human annotator would (varied).
fn finish<R: Rng>(text: &str, rng: &mut R) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    let mut chars = text.chars();
    if rng.random_bool(0.7) {
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
        }
    }
    out.push_str(chars.as_str());
    match rng.random_range(0..10) {
        0..=4 => out.push('.'),
        5 | 6 => out.push_str(" ."),
        _ => {}
    }
    out
}

/// Five distinct (by token sequence) captions of 5–20 words for `scene`.
pub fn captions<R: Rng>(scene: &Scene, rng: &mut R) -> Vec<String> {
    let p = Phrases { scene };
    let n_templates = match scene.objects.len() {
        1 | 2 => 9,
        _ => 8,
    };
    let mut order: Vec<usize> = (0..n_templates).collect();
    order.shuffle(rng);
    let mut out: Vec<String> = Vec::with_capacity(CAPTIONS_PER_IMAGE);
    let mut seen: Vec<Vec<String>> = Vec::with_capacity(CAPTIONS_PER_IMAGE);
    for attempt in 0..1000 {
        if out.len() == CAPTIONS_PER_IMAGE {
            break;
        }
        let t = order[attempt % n_templates];
        let text = match scene.objects.len() {
            1 => single(&p, t, rng),
            2 => pair(&p, t, rng),
            _ => triple(&p, t, rng),
        };
        let tokens = tokenize(&text);
        if !(MIN_WORDS..=MAX_WORDS).contains(&tokens.len()) || seen.contains(&tokens) {
            continue;
        }
        seen.push(tokens);
        out.push(finish(&text, rng));
    }
    out
}
