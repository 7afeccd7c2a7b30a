//! Custom controls and readings on the page, declared in the config file so
//! nobody has to edit the page. A control sends
//! `{"type":"custom","name":"horn","value":true}` on the data channel (the
//! operator's only), which reaches the programs on the local API
//! ([`crate::api`]); a reading is a value those programs publish, shown by
//! name, with a label, a unit and a gauge when declared here.
//!
//! ```toml
//! [[controls]]
//! name = "horn"        # what programs see; letters, digits, _ . -
//! kind = "button"      # button (true while held) | toggle (true/false) | slider (a number)
//! label = "Horn"       # default: the name
//! key = "h"            # optional keyboard key (KeyboardEvent.key); buttons and toggles
//!
//! [[controls]]
//! name = "speed"
//! kind = "slider"
//! min = 0.0            # sliders only; defaults 0, 1 and 0.01
//! max = 1.0
//! step = 0.1
//!
//! [[readings]]
//! name = "battery"     # as the program publishes it
//! label = "Battery"    # default: the name
//! unit = "V"           # optional
//! min = 6.0            # optional, with max: drawn as a gauge
//! max = 8.4
//! ```

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const MAX_CONTROLS: usize = 32;
pub const MAX_READINGS: usize = 64;
const MAX_NAME: usize = 32;
const MAX_LABEL: usize = 64;
const MAX_UNIT: usize = 16;
const MAX_KEY: usize = 16;
/// The page's own keys: driving (WASD, arrows) and the emergency stop (space).
const RESERVED_KEYS: &[&str] = &[
    "w",
    "a",
    "s",
    "d",
    " ",
    "arrowup",
    "arrowdown",
    "arrowleft",
    "arrowright",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlKind {
    /// `true` when pressed, `false` when let go.
    Button,
    /// `true` or `false`, flipped by each press.
    Toggle,
    /// A number between `min` and `max`.
    Slider,
}

/// One `[[controls]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    pub name: String,
    pub kind: ControlKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
}

/// One `[[readings]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// The checked `[[controls]]` and `[[readings]]`, with every default filled
/// in: what the page renders (`controls` message, `GET /api/controls`) and
/// programs get in their `welcome`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Controls {
    pub controls: Vec<ControlConfig>,
    pub readings: Vec<ReadingConfig>,
}

/// A name programs and pages agree on: 1 to 32 of `A-Z a-z 0-9 _ . -`.
pub fn check_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
        return Err(format!(
            "name {name:?} must be 1 to {MAX_NAME} letters, digits, '_', '.' or '-'"
        ));
    }
    Ok(())
}

fn check_text(what: &str, text: &Option<String>, limit: usize) -> Result<(), String> {
    match text {
        Some(t) if t.chars().count() > limit => {
            Err(format!("{what} {t:?} is longer than {limit} characters"))
        }
        _ => Ok(()),
    }
}

fn check_range(what: &str, min: Option<f64>, max: Option<f64>) -> Result<(), String> {
    match (min, max) {
        (None, None) => Ok(()),
        (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() && lo < hi => Ok(()),
        (Some(lo), Some(hi)) => Err(format!("{what}: min {lo} must be below max {hi}")),
        _ => Err(format!("{what}: min and max go together")),
    }
}

impl Controls {
    /// Checks the tables (names, kinds' options, keys) and fills in defaults.
    /// The `[[controls]]` and `[[readings]]` of a config text, checked (tests).
    #[cfg(test)]
    pub fn from_toml(text: &str) -> Result<Controls, String> {
        #[derive(Deserialize)]
        struct Tables {
            #[serde(default)]
            controls: Vec<ControlConfig>,
            #[serde(default)]
            readings: Vec<ReadingConfig>,
        }
        let tables: Tables = toml::from_str(text).map_err(|e| e.to_string())?;
        Controls::new(&tables.controls, &tables.readings)
    }

    pub fn new(controls: &[ControlConfig], readings: &[ReadingConfig]) -> Result<Controls, String> {
        if controls.len() > MAX_CONTROLS {
            return Err(format!("at most {MAX_CONTROLS} [[controls]]"));
        }
        if readings.len() > MAX_READINGS {
            return Err(format!("at most {MAX_READINGS} [[readings]]"));
        }
        let mut checked = Controls::default();
        for c in controls {
            let control = check_control(c).map_err(|e| format!("[[controls]] {e}"))?;
            if checked.control(&control.name).is_some() {
                return Err(format!("[[controls]] name {:?} is used twice", c.name));
            }
            let same_key = |other: &ControlConfig| {
                other.key.is_some()
                    && other.key.as_deref().map(str::to_lowercase)
                        == c.key.as_deref().map(str::to_lowercase)
            };
            if let Some(other) = checked.controls.iter().find(|o| same_key(o)) {
                return Err(format!(
                    "[[controls]] {:?} and {:?} both use the key {:?}",
                    other.name,
                    c.name,
                    c.key.as_deref().unwrap_or_default()
                ));
            }
            checked.controls.push(control);
        }
        for r in readings {
            let reading = check_reading(r).map_err(|e| format!("[[readings]] {e}"))?;
            if checked.readings.iter().any(|o| o.name == r.name) {
                return Err(format!("[[readings]] name {:?} is used twice", r.name));
            }
            checked.readings.push(reading);
        }
        Ok(checked)
    }

    pub fn is_empty(&self) -> bool {
        self.controls.is_empty() && self.readings.is_empty()
    }

    pub fn control(&self, name: &str) -> Option<&ControlConfig> {
        self.controls.iter().find(|c| c.name == name)
    }

    /// Checks a `custom` message from a page against the control it names and
    /// returns the value to pass on (a slider's clamped into its range).
    pub fn check_value(&self, name: &str, value: &Value) -> Result<Value, String> {
        let Some(control) = self.control(name) else {
            let known: Vec<&str> = self.controls.iter().map(|c| c.name.as_str()).collect();
            return Err(if known.is_empty() {
                format!("unknown control {name:?}: the robot declares no [[controls]]")
            } else {
                format!("unknown control {name:?}; declared: {}", known.join(", "))
            });
        };
        match (control.kind, value) {
            (ControlKind::Button | ControlKind::Toggle, Value::Bool(_)) => Ok(value.clone()),
            (ControlKind::Slider, Value::Number(n)) => {
                let (lo, hi) = (control.min.unwrap_or(0.0), control.max.unwrap_or(1.0));
                // serde_json gives only finite numbers; + 0.0 makes -0.0 plain 0.
                let v = n.as_f64().unwrap_or(lo).clamp(lo, hi) + 0.0;
                Ok(Value::from(v))
            }
            (ControlKind::Slider, _) => Err(format!(
                "control {name:?} is a slider: value must be a number"
            )),
            _ => Err(format!(
                "control {name:?} is a {}: value must be true or false",
                if control.kind == ControlKind::Button {
                    "button"
                } else {
                    "toggle"
                }
            )),
        }
    }
}

fn check_control(c: &ControlConfig) -> Result<ControlConfig, String> {
    check_name(&c.name)?;
    let name = &c.name;
    check_text(&format!("{name:?}: label"), &c.label, MAX_LABEL)?;
    let mut control = c.clone();
    control.label.get_or_insert_with(|| c.name.clone());
    if let Some(key) = &c.key {
        if c.kind == ControlKind::Slider {
            return Err(format!(
                "{name:?}: `key` is for buttons and toggles, not sliders"
            ));
        }
        if key.is_empty() || key.chars().count() > MAX_KEY {
            return Err(format!("{name:?}: key {key:?} must be 1 to {MAX_KEY} characters (a KeyboardEvent.key, e.g. \"h\" or \"F2\")"));
        }
        if RESERVED_KEYS.contains(&key.to_lowercase().as_str()) {
            return Err(format!(
                "{name:?}: key {key:?} is the page's own (W A S D and the arrows drive, space stops)"
            ));
        }
    }
    if c.kind != ControlKind::Slider {
        if c.min.is_some() || c.max.is_some() || c.step.is_some() {
            return Err(format!("{name:?}: min, max and step are for sliders"));
        }
        return Ok(control);
    }
    let (min, max) = (c.min.unwrap_or(0.0), c.max.unwrap_or(1.0));
    check_range(&format!("{name:?}"), Some(min), Some(max))?;
    let step = c.step.unwrap_or(0.01);
    if !(step > 0.0 && step <= max - min) {
        return Err(format!(
            "{name:?}: step {step} must be > 0 and at most max - min"
        ));
    }
    (control.min, control.max, control.step) = (Some(min), Some(max), Some(step));
    Ok(control)
}

fn check_reading(r: &ReadingConfig) -> Result<ReadingConfig, String> {
    check_name(&r.name)?;
    let name = &r.name;
    check_text(&format!("{name:?}: label"), &r.label, MAX_LABEL)?;
    check_text(&format!("{name:?}: unit"), &r.unit, MAX_UNIT)?;
    check_range(&format!("{name:?}"), r.min, r.max)?;
    let mut reading = r.clone();
    reading.label.get_or_insert_with(|| r.name.clone());
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(toml: &str) -> Result<Controls, String> {
        Controls::from_toml(toml)
    }

    const PANEL: &str = r#"
        [[controls]]
        name = "horn"
        kind = "button"
        key = "h"
        [[controls]]
        name = "lights"
        kind = "toggle"
        label = "Lights"
        [[controls]]
        name = "speed"
        kind = "slider"
        min = 0.2
        max = 0.8
        [[readings]]
        name = "battery"
        unit = "V"
        min = 6.0
        max = 8.4
    "#;

    #[test]
    fn defaults_are_filled_in_for_the_page() {
        let c = parse(PANEL).unwrap();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({
                "controls": [
                    {"name": "horn", "kind": "button", "label": "horn", "key": "h"},
                    {"name": "lights", "kind": "toggle", "label": "Lights"},
                    {"name": "speed", "kind": "slider", "label": "speed", "min": 0.2, "max": 0.8, "step": 0.01},
                ],
                "readings": [{"name": "battery", "label": "battery", "unit": "V", "min": 6.0, "max": 8.4}],
            })
        );
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn values_are_checked_against_the_kind_and_sliders_clamped() {
        let c = parse(PANEL).unwrap();
        assert_eq!(c.check_value("horn", &json!(true)), Ok(json!(true)));
        assert_eq!(c.check_value("lights", &json!(false)), Ok(json!(false)));
        assert_eq!(c.check_value("speed", &json!(0.5)), Ok(json!(0.5)));
        assert_eq!(c.check_value("speed", &json!(9)), Ok(json!(0.8)));
        assert_eq!(c.check_value("speed", &json!(-1)), Ok(json!(0.2)));
        let err = |name, value| c.check_value(name, &value).unwrap_err();
        assert!(err("horn", json!(1)).contains("button: value must be true or false"));
        assert!(err("lights", json!("on")).contains("toggle"));
        assert!(err("speed", json!(true)).contains("slider: value must be a number"));
        assert!(err("siren", json!(true)).contains("declared: horn, lights, speed"));
        let none = parse("").unwrap();
        assert!(none
            .check_value("horn", &json!(true))
            .unwrap_err()
            .contains("declares no [[controls]]"));
    }

    /// Issue 19: extremes land on the range's ends, -0.0 is sent on as 0.
    #[test]
    fn slider_extremes_are_clamped() {
        let c = parse("[[controls]]\nname = \"tilt\"\nkind = \"slider\"\nmin = -1.0\nmax = 1.0")
            .unwrap();
        let sent = |text: &str| {
            let value: Value = serde_json::from_str(text).unwrap();
            c.check_value("tilt", &value).unwrap().to_string()
        };
        assert_eq!(sent("1e308"), "1.0");
        assert_eq!(sent("-1.7976931348623157e308"), "-1.0");
        assert_eq!(sent("18446744073709551615"), "1.0");
        assert_eq!(sent("-9223372036854775808"), "-1.0");
        assert_eq!(sent("-0.0"), "0.0");
        assert_eq!(sent("5e-324"), "5e-324");
    }

    #[test]
    fn mistakes_are_explained() {
        let err = |toml: &str| parse(toml).unwrap_err();
        let control =
            |extra: &str| format!("[[controls]]\nname = \"x\"\nkind = \"button\"\n{extra}");
        assert!(
            err("[[controls]]\nname = \"x\"\nkind = \"knob\"").contains("unknown variant `knob`")
        );
        assert!(err("[[controls]]\nkind = \"button\"").contains("missing field `name`"));
        assert!(err(&control("colour = 1")).contains("unknown field `colour`"));
        assert!(err(&format!("{}\n{}", control(""), control(""))).contains("\"x\" is used twice"));
        assert!(err("[[controls]]\nname = \"a b\"\nkind = \"button\"").contains("letters, digits"));
        assert!(err(&control("key = \"w\"")).contains("page's own"));
        assert!(err(&control("key = \"ArrowUp\"")).contains("page's own"));
        assert!(err(&control("key = \"\"")).contains("1 to 16"));
        assert!(err(&control("min = 1.0")).contains("for sliders"));
        let slider =
            |extra: &str| format!("[[controls]]\nname = \"s\"\nkind = \"slider\"\n{extra}");
        assert!(err(&slider("key = \"k\"")).contains("not sliders"));
        assert!(err(&slider("min = 2.0\nmax = 1.0")).contains("below max"));
        assert!(err(&slider("step = 0.0")).contains("step 0"));
        assert!(err(&slider("step = 5.0")).contains("at most max - min"));
        let two_keys = "[[controls]]\nname = \"a\"\nkind = \"button\"\nkey = \"h\"\n\
                        [[controls]]\nname = \"b\"\nkind = \"toggle\"\nkey = \"H\"";
        assert!(err(two_keys).contains("both use the key"));
        let reading = |extra: &str| format!("[[readings]]\nname = \"r\"\n{extra}");
        assert!(err(&reading("min = 1.0")).contains("go together"));
        assert!(err(&reading("min = 1.0\nmax = 1.0")).contains("below max"));
        assert!(err(&format!("{}\n{}", reading(""), reading(""))).contains("used twice"));
        assert!(err(&reading(&format!("unit = \"{}\"", "u".repeat(17)))).contains("longer than 16"));
    }
}
