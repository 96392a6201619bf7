//! Reads PyTorch `torch.save` files (the zip format of torch ≥ 1.6) without running any of their
//! code: a restricted unpickler that understands dicts, lists, tuples, scalars, strings and
//! tensors (`torch._utils._rebuild_tensor_v2` over typed storages), and turns every other class
//! into an inert placeholder. A checkpoint can therefore never execute code here, unlike
//! `torch.load(weights_only=False)`.
//!
//! Covers FusionProt `.pth` state_dicts (an `OrderedDict` of tensors), fair-esm `.pt` files (a
//! dict with `model`, plus `args`/`cfg` objects we leave opaque) and HuggingFace
//! `pytorch_model.bin`.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use tch::{Kind, Tensor};

/// A value of the pickle's object graph.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A class or function named by `module.name`, never called.
    Global(String),
    /// `persistent_load` id of a storage: (kind, key in `data/`).
    Storage(Kind, String),
    /// A tensor to rebuild from a storage.
    Tensor(TensorRef),
    /// An instance of any other class: its name and whatever state it was built with.
    Object(String, Box<Value>),
    Mark,
}

#[derive(Debug, Clone)]
pub struct TensorRef {
    pub kind: Kind,
    pub storage: String,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The reasons a file cannot be read, with the byte offset in `data.pkl` where it applies.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error(
        "not a torch.save zip archive ({0}); files written by torch < 1.6 (legacy format) are not supported, re-save them with torch.save"
    )]
    NotZip(String),
    #[error("no data.pkl in the archive")]
    NoPickle,
    #[error("data.pkl byte {offset}: {message}")]
    Malformed { offset: usize, message: String },
    #[error("tensor storage {key}: {message}")]
    Storage { key: String, message: String },
    #[error("{0}")]
    Torch(#[from] tch::TchError),
}

/// Reads the whole object graph of a `torch.save` file and the tensors it references.
///
/// # Errors
/// Not a zip, no `data.pkl`, an opcode outside the supported protocol-2..5 subset, or a tensor
/// that does not fit its storage.
pub fn load(path: &Path) -> Result<(Value, HashMap<String, Tensor>), PickleError> {
    let file = std::fs::File::open(path).map_err(|e| PickleError::NotZip(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| PickleError::NotZip(e.to_string()))?;
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let pkl = names
        .iter()
        .find(|n| n.ends_with("/data.pkl") || n.as_str() == "data.pkl")
        .ok_or(PickleError::NoPickle)?
        .clone();
    let prefix = pkl.trim_end_matches("data.pkl").to_owned();
    let mut bytes = Vec::new();
    archive
        .by_name(&pkl)
        .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
        .map_err(|e| PickleError::NotZip(e.to_string()))?;
    let value = Unpickler::new(&bytes).run()?;
    let mut refs = Vec::new();
    collect_tensors(&value, &mut refs);
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    let mut tensors = HashMap::new();
    for r in refs {
        if !storages.contains_key(&r.storage) {
            let name = format!("{prefix}data/{}", r.storage);
            let mut data = Vec::new();
            archive
                .by_name(&name)
                .and_then(|mut f| f.read_to_end(&mut data).map_err(Into::into))
                .map_err(|e| PickleError::Storage {
                    key: r.storage.clone(),
                    message: e.to_string(),
                })?;
            let elem = r.kind.elt_size_in_bytes();
            if data.len() % elem != 0 {
                return Err(PickleError::Storage {
                    key: r.storage.clone(),
                    message: format!("{} bytes is not a multiple of {elem}", data.len()),
                });
            }
            let n = (data.len() / elem) as i64;
            let t = Tensor::f_from_data_size(&data, &[n], r.kind)?;
            storages.insert(r.storage.clone(), t);
        }
        let storage = &storages[&r.storage];
        let numel = storage.size()[0];
        // The furthest element the view touches must lie inside the storage.
        let last = r.offset
            + r.size
                .iter()
                .zip(&r.stride)
                .map(|(s, st)| (s - 1).max(0) * st)
                .sum::<i64>();
        if r.offset < 0
            || r.stride.iter().any(|s| *s < 0)
            || (r.size.iter().all(|s| *s > 0) && last >= numel)
        {
            return Err(PickleError::Storage {
                key: r.storage.clone(),
                message: format!(
                    "view (offset {}, size {:?}, stride {:?}) outside a storage of {numel} elements",
                    r.offset, r.size, r.stride
                ),
            });
        }
        let t = storage
            .f_as_strided(&r.size, &r.stride, Some(r.offset))?
            .f_contiguous()?;
        tensors.insert(tensor_key(&r), t);
    }
    Ok((value, tensors))
}

/// The key under which [`load`] returns a tensor: unique per view.
pub fn tensor_key(r: &TensorRef) -> String {
    format!("{}:{}:{:?}:{:?}", r.storage, r.offset, r.size, r.stride)
}

fn collect_tensors(v: &Value, out: &mut Vec<TensorRef>) {
    match v {
        Value::Tensor(t) => out.push(t.clone()),
        Value::List(items) | Value::Tuple(items) => {
            items.iter().for_each(|i| collect_tensors(i, out))
        }
        Value::Dict(items) => items.iter().for_each(|(_, i)| collect_tensors(i, out)),
        Value::Object(_, state) => collect_tensors(state, out),
        _ => {}
    }
}

fn storage_kind(class: &str) -> Option<Kind> {
    Some(match class.rsplit('.').next()? {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Unpickler<'a> {
    fn new(data: &'a [u8]) -> Self {
        Unpickler {
            data,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError::Malformed {
            offset: self.pos,
            message: message.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => self.err("unexpected end of data"),
        }
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, x| (acc << 8) | u64::from(*x)))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(n) = rest.iter().position(|b| *b == b'\n') else {
            return self.err("unterminated line");
        };
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(i) = self.stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            return self.err("no MARK on the stack");
        };
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top_mut(&mut self) -> Result<&mut Value, PickleError> {
        let pos = self.pos;
        self.stack.last_mut().ok_or(PickleError::Malformed {
            offset: pos,
            message: "stack underflow".into(),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Value::Str(s.to_owned())),
            Err(_) => self.err("invalid UTF-8 in a string"),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.err(format!("pickle protocol {proto} is not supported"));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME length: frames are read as one stream
                }
                b'.' => return self.pop(),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                0x8f => self.stack.push(Value::List(Vec::new())), // EMPTY_SET, as a list
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = usize::from(self.u8()?);
                    if n > 8 {
                        return self.err("LONG1 wider than 64 bits");
                    }
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, x) in b.iter().enumerate() {
                        v |= i64::from(*x) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.le(4)? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.le(8)? as usize;
                    let v = self.string(n)?;
                    self.stack.push(v);
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(v));
                }
                b'T' | b'B' => {
                    let n = self.le(4)? as usize;
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(v));
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let v = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(v));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return self.err("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items);
                    self.stack.push(Value::Dict(pairs));
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items)); // FROZENSET
                }
                0x90 => {
                    let items = self.pop_mark()?; // ADDITEMS
                    if let Value::List(l) = self.top_mut()? {
                        l.extend(items);
                    }
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top_mut()? {
                        Value::List(l) => l.push(v),
                        _ => return self.err("APPEND to a non-list"),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top_mut()? {
                        Value::List(l) => l.extend(items),
                        Value::Object(..) => {}
                        _ => return self.err("APPENDS to a non-list"),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    set_items(self.top_mut()?, vec![(k, v)]);
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let p = pairs(items);
                    set_items(self.top_mut()?, p);
                }
                b'q' => {
                    let i = u32::from(self.u8()?);
                    let v = self.top_mut()?.clone();
                    self.memo.insert(i, v);
                }
                b'r' => {
                    let i = self.le(4)? as u32;
                    let v = self.top_mut()?.clone();
                    self.memo.insert(i, v);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    let v = self.top_mut()?.clone();
                    self.memo.insert(i, v);
                }
                b'h' | b'j' => {
                    let i = if op == b'h' {
                        u32::from(self.u8()?)
                    } else {
                        self.le(4)? as u32
                    };
                    match self.memo.get(&i) {
                        Some(v) => self.stack.push(v.clone()),
                        None => return self.err(format!("memo {i} read before it was written")),
                    }
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top_mut()?.clone();
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(format!("{module}.{name}")));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => {
                            self.stack.push(Value::Global(format!("{m}.{n}")));
                        }
                        _ => return self.err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.stack.push(v);
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.stack.push(v);
                }
                0x92 => {
                    // NEWOBJ_EX: cls, args, kwargs
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let top = self.top_mut()?;
                    match top {
                        Value::Object(_, s) => **s = state,
                        Value::Tensor(_) | Value::Dict(_) => {} // Parameter/OrderedDict metadata
                        _ => {}
                    }
                }
                _ => return self.err(format!("opcode 0x{op:02x} is not supported")),
            }
        }
    }

    fn persistent(&self, pid: Value) -> Result<Value, PickleError> {
        // ('storage', <class FloatStorage> | torch.float32, key, location, numel)
        let Value::Tuple(items) = pid else {
            return self.err("persistent id is not a tuple");
        };
        match items.as_slice() {
            [Value::Str(tag), class, Value::Str(key), ..] if tag == "storage" => {
                let kind = match class {
                    Value::Global(name) => storage_kind(name),
                    Value::Object(name, _) => storage_kind(name),
                    _ => None,
                };
                match kind {
                    Some(k) => Ok(Value::Storage(k, key.clone())),
                    None => self.err(format!("storage of unsupported type {class:?}")),
                }
            }
            _ => self.err("persistent id is not a storage"),
        }
    }

    fn reduce(&self, callable: Value, args: Value) -> Result<Value, PickleError> {
        let Value::Global(name) = callable else {
            return Ok(Value::Object("<reduce>".into(), Box::new(args)));
        };
        let args = match args {
            Value::Tuple(a) => a,
            other => vec![other],
        };
        match name.as_str() {
            "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
                let ints = |v: &Value| -> Option<Vec<i64>> {
                    match v {
                        Value::Tuple(x) | Value::List(x) => x
                            .iter()
                            .map(|i| match i {
                                Value::Int(n) => Some(*n),
                                _ => None,
                            })
                            .collect(),
                        _ => None,
                    }
                };
                match args.as_slice() {
                    [
                        Value::Storage(kind, key),
                        Value::Int(offset),
                        size,
                        stride,
                        ..,
                    ] => match (ints(size), ints(stride)) {
                        (Some(size), Some(stride)) if size.len() == stride.len() => {
                            Ok(Value::Tensor(TensorRef {
                                kind: *kind,
                                storage: key.clone(),
                                offset: *offset,
                                size,
                                stride,
                            }))
                        }
                        _ => self.err("tensor size/stride are not integer tuples of one length"),
                    },
                    _ => self.err("unexpected arguments to _rebuild_tensor_v2"),
                }
            }
            "torch._utils._rebuild_parameter" | "torch._utils._rebuild_parameter_with_state" => {
                match args.into_iter().next() {
                    Some(t @ Value::Tensor(_)) => Ok(t),
                    _ => self.err("_rebuild_parameter without a tensor"),
                }
            }
            "collections.OrderedDict" | "builtins.dict" => Ok(Value::Dict(Vec::new())),
            _ => Ok(Value::Object(name, Box::new(Value::Tuple(args)))),
        }
    }
}

fn pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    out
}

fn set_items(target: &mut Value, items: Vec<(Value, Value)>) {
    match target {
        Value::Dict(d) => d.extend(items),
        Value::Object(_, state) => {
            if !matches!(**state, Value::Dict(_)) {
                **state = Value::Dict(Vec::new());
            }
            if let Value::Dict(d) = &mut **state {
                d.extend(items);
            }
        }
        _ => {}
    }
}

/// Flattens a pickled state dict into `name → tensor`, following nested dicts with dotted names
/// only when asked (`prefix`).
pub fn state_dict(value: &Value, tensors: &HashMap<String, Tensor>) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    if let Value::Dict(items) = value {
        for (k, v) in items {
            if let (Value::Str(name), Value::Tensor(r)) = (k, v)
                && let Some(t) = tensors.get(&tensor_key(r))
            {
                out.push((name.clone(), t.shallow_clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_pickles_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"\x80\x02}q\x00",
            b"\x80\x02(X\xff\xff\xff\xff",
            b"h\x05.",
        ] {
            assert!(Unpickler::new(bytes).run().is_err());
        }
        // {'a': 1}
        let v = Unpickler::new(b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x01s.")
            .run()
            .expect("valid pickle");
        assert!(matches!(v.get("a"), Some(Value::Int(1))));
    }
}
