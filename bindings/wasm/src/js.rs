//! Plain JavaScript objects in and out, written by hand over `js_sys`.
//!
//! serde with serde-wasm-bindgen did this before; its generic deserializers (internally tagged
//! enums go through serde's `Content` buffer) and visitors were about 150 KB of the wasm module
//! (docs/decisions.md, "wasm size"). The rules kept from then: a missing, `undefined` or `null`
//! optional field is absent; an optional field that is present must have the right type; a
//! `u64`/`i64` is a safe-integer number or a BigInt in range; bytes are a `Uint8Array` (a Node
//! `Buffer` is one), an `ArrayBuffer` or an array of byte numbers. Outgoing objects carry every
//! field, an absent optional one as `undefined`.

use std::cell::RefCell;

use js_sys::{Array, ArrayBuffer, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen]
extern "C" {
    /// `Reflect.set` without `js_sys`'s exception handling: its glue wraps every call in a
    /// closure over `arguments` (most of the cost of building an event object, measured in
    /// `npm/bench/history.mjs`). Setting a data property on a fresh plain object cannot throw.
    #[wasm_bindgen(js_namespace = Reflect, js_name = set)]
    fn reflect_set(target: &Object, key: &JsValue, value: &JsValue) -> bool;
}

/// An `Error` with a stable `code` property.
pub(crate) fn coded_error(code: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(&error, &JsValue::from_str("code"), &JsValue::from_str(code));
    error.into()
}

// --- reading ------------------------------------------------------------------------------

/// A JavaScript object being read; every failure is an `Error` with the reader's `code`.
pub(crate) struct Reader<'a> {
    value: &'a JsValue,
    code: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `value`, which must be an object (not `null`, not an array of something).
    pub(crate) fn new(value: &'a JsValue, code: &'static str, what: &str) -> Result<Self, JsValue> {
        if !value.is_object() {
            return Err(coded_error(code, &format!("{what} must be an object")));
        }
        Ok(Reader { value, code })
    }

    /// An `Error` with this reader's code.
    pub(crate) fn error(&self, message: &str) -> JsValue {
        coded_error(self.code, message)
    }

    fn invalid(&self, key: &str, expected: &str) -> JsValue {
        self.error(&format!("{key}: expected {expected}"))
    }

    /// Fails when the object has an own enumerable property not in `known`.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), JsValue> {
        if let Some(object) = self.value.dyn_ref::<Object>() {
            for key in Object::keys(object).iter() {
                let name = key.as_string().unwrap_or_default();
                if !known.contains(&name.as_str()) {
                    return Err(self.error(&format!("unknown field {name:?}")));
                }
            }
        }
        Ok(())
    }

    /// The raw value of `key` (`undefined` when missing).
    pub(crate) fn get(&self, key: &str) -> JsValue {
        Reflect::get(self.value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }

    /// The value of `key` unless it is missing, `undefined` or `null`.
    fn present(&self, key: &str) -> Option<JsValue> {
        let value = self.get(key);
        if value.is_undefined() || value.is_null() {
            None
        } else {
            Some(value)
        }
    }

    fn required(&self, key: &str) -> Result<JsValue, JsValue> {
        self.present(key)
            .ok_or_else(|| self.error(&format!("missing field {key:?}")))
    }

    /// An optional string.
    pub(crate) fn opt_string(&self, key: &str) -> Result<Option<String>, JsValue> {
        self.present(key)
            .map(|v| v.as_string().ok_or_else(|| self.invalid(key, "a string")))
            .transpose()
    }

    /// A required string.
    pub(crate) fn string(&self, key: &str) -> Result<String, JsValue> {
        let value = self.required(key)?;
        value
            .as_string()
            .ok_or_else(|| self.invalid(key, "a string"))
    }

    /// An optional boolean.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, JsValue> {
        self.present(key)
            .map(|v| v.as_bool().ok_or_else(|| self.invalid(key, "a boolean")))
            .transpose()
    }

    /// A required boolean.
    pub(crate) fn bool(&self, key: &str) -> Result<bool, JsValue> {
        let value = self.required(key)?;
        value
            .as_bool()
            .ok_or_else(|| self.invalid(key, "a boolean"))
    }

    /// An optional number.
    pub(crate) fn opt_f64(&self, key: &str) -> Result<Option<f64>, JsValue> {
        self.present(key)
            .map(|v| v.as_f64().ok_or_else(|| self.invalid(key, "a number")))
            .transpose()
    }

    /// An optional integer in `min..=max`: a safe-integer number or a BigInt.
    fn opt_int(&self, key: &str, min: i128, max: i128) -> Result<Option<i128>, JsValue> {
        let Some(value) = self.present(key) else {
            return Ok(None);
        };
        let int = if value.is_bigint() {
            i128::try_from(value).ok()
        } else if js_sys::Number::is_safe_integer(&value) {
            value.as_f64().map(|f| f as i128)
        } else {
            None
        };
        match int {
            Some(i) if (min..=max).contains(&i) => Ok(Some(i)),
            _ => Err(self.invalid(key, "an integer in range")),
        }
    }

    /// An optional `i64`.
    pub(crate) fn opt_i64(&self, key: &str) -> Result<Option<i64>, JsValue> {
        Ok(self
            .opt_int(key, i64::MIN.into(), i64::MAX.into())?
            .map(|i| i as i64))
    }

    /// A required `i64`.
    pub(crate) fn i64(&self, key: &str) -> Result<i64, JsValue> {
        self.required(key)?;
        Ok(self.opt_i64(key)?.unwrap_or_default())
    }

    /// A required `u64`.
    pub(crate) fn u64(&self, key: &str) -> Result<u64, JsValue> {
        self.required(key)?;
        Ok(self.opt_int(key, 0, u64::MAX.into())?.unwrap_or_default() as u64)
    }

    /// An optional `i32`.
    pub(crate) fn opt_i32(&self, key: &str) -> Result<Option<i32>, JsValue> {
        Ok(self
            .opt_int(key, i32::MIN.into(), i32::MAX.into())?
            .map(|i| i as i32))
    }

    /// A required `i32`.
    pub(crate) fn i32(&self, key: &str) -> Result<i32, JsValue> {
        self.required(key)?;
        Ok(self.opt_i32(key)?.unwrap_or_default())
    }

    /// An optional `u32`.
    pub(crate) fn opt_u32(&self, key: &str) -> Result<Option<u32>, JsValue> {
        Ok(self.opt_int(key, 0, u32::MAX.into())?.map(|i| i as u32))
    }

    /// Optional bytes.
    pub(crate) fn opt_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, JsValue> {
        self.present(key)
            .map(|v| bytes_from(&v).ok_or_else(|| self.invalid(key, "bytes (a Uint8Array)")))
            .transpose()
    }

    /// Required bytes.
    pub(crate) fn bytes(&self, key: &str) -> Result<Vec<u8>, JsValue> {
        self.required(key)?;
        Ok(self.opt_bytes(key)?.unwrap_or_default())
    }

    /// A required array of strings.
    pub(crate) fn strings(&self, key: &str) -> Result<Vec<String>, JsValue> {
        let value = self.required(key)?;
        let array = value
            .dyn_ref::<Array>()
            .ok_or_else(|| self.invalid(key, "an array of strings"))?;
        array
            .iter()
            .map(|v| {
                v.as_string()
                    .ok_or_else(|| self.invalid(key, "an array of strings"))
            })
            .collect()
    }

    /// An optional array, each element read by `each`.
    pub(crate) fn opt_array<T>(
        &self,
        key: &str,
        mut each: impl FnMut(&JsValue) -> Result<T, JsValue>,
    ) -> Result<Option<Vec<T>>, JsValue> {
        let Some(value) = self.present(key) else {
            return Ok(None);
        };
        let array = value
            .dyn_ref::<Array>()
            .ok_or_else(|| self.invalid(key, "an array"))?;
        array
            .iter()
            .map(|v| each(&v))
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

/// The bytes of a `Uint8Array`, an `ArrayBuffer` or an array of byte numbers.
pub(crate) fn bytes_from(value: &JsValue) -> Option<Vec<u8>> {
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Some(bytes.to_vec());
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Some(Uint8Array::new(buffer).to_vec());
    }
    let array = value.dyn_ref::<Array>()?;
    array
        .iter()
        .map(|v| {
            let f = v.as_f64()?;
            (f.fract() == 0.0 && (0.0..=255.0).contains(&f)).then_some(f as u8)
        })
        .collect()
}

// --- writing ------------------------------------------------------------------------------

thread_local! {
    /// The JavaScript string of every property name set so far, by the literal it comes from
    /// (address and length): each is decoded from wasm memory once instead of at every object.
    /// Only literals are names, so the list is bounded by the names in this module.
    static NAMES: RefCell<Vec<((usize, usize), JsValue)>> = const { RefCell::new(Vec::new()) };
}

/// Sets property `key` of `object` to `value`.
fn set_property(object: &Object, key: &'static str, value: &JsValue) {
    let literal = (key.as_ptr() as usize, key.len());
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        let index = match names.iter().position(|(at, _)| *at == literal) {
            Some(index) => index,
            None => {
                names.push((literal, JsValue::from_str(key)));
                names.len() - 1
            }
        };
        reflect_set(object, &names[index].1, value);
    });
}

/// A plain object being built; property names are literals (see [`set_property`]).
pub(crate) struct Obj(Object);

impl Obj {
    /// `{}`.
    pub(crate) fn new() -> Self {
        Obj(Object::new())
    }

    /// `{ [tag]: name }`: the start of a tagged variant.
    pub(crate) fn tagged(tag: &'static str, name: &str) -> Self {
        Obj::new().str(tag, name)
    }

    /// Sets `key` to `value`.
    pub(crate) fn set(self, key: &'static str, value: JsValue) -> Self {
        set_property(&self.0, key, &value);
        self
    }

    /// A string field.
    pub(crate) fn str(self, key: &'static str, value: &str) -> Self {
        self.set(key, JsValue::from_str(value))
    }

    /// An optional string field (`undefined` when absent).
    pub(crate) fn opt_str(self, key: &'static str, value: Option<&str>) -> Self {
        self.set(key, value.map_or(JsValue::UNDEFINED, JsValue::from_str))
    }

    /// A number field.
    pub(crate) fn num(self, key: &'static str, value: f64) -> Self {
        self.set(key, JsValue::from_f64(value))
    }

    /// An optional number field (`undefined` when absent).
    pub(crate) fn opt_num(self, key: &'static str, value: Option<f64>) -> Self {
        self.set(key, value.map_or(JsValue::UNDEFINED, JsValue::from_f64))
    }

    /// A boolean field.
    pub(crate) fn bool(self, key: &'static str, value: bool) -> Self {
        self.set(key, JsValue::from_bool(value))
    }

    /// A `Uint8Array` field holding a copy of `value`.
    pub(crate) fn bytes(self, key: &'static str, value: &[u8]) -> Self {
        self.set(key, Uint8Array::from(value).into())
    }

    /// An optional `Uint8Array` field (`undefined` when absent).
    pub(crate) fn opt_bytes(self, key: &'static str, value: Option<&[u8]>) -> Self {
        self.set(
            key,
            value.map_or(JsValue::UNDEFINED, |v| Uint8Array::from(v).into()),
        )
    }

    /// The object.
    pub(crate) fn done(self) -> JsValue {
        self.0.into()
    }
}

/// A JS array of `items`, each converted by `each`.
pub(crate) fn array<T>(items: impl IntoIterator<Item = T>, each: impl Fn(T) -> JsValue) -> JsValue {
    let array = Array::new();
    for item in items {
        array.push(&each(item));
    }
    array.into()
}

/// A JS array of strings.
pub(crate) fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> JsValue {
    array(items, |s| JsValue::from_str(s.as_ref()))
}
