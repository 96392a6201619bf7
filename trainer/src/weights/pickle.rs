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
    let bytes = read_member(&mut archive, &pkl, MAX_PICKLE_BYTES)
        .map_err(|e| PickleError::NotZip(format!("{pkl}: {e}")))?;
    let value = Unpickler::new(&bytes).run()?;
    let mut refs = Vec::new();
    collect_tensors(&value, &mut refs);
    let mut storages: HashMap<String, Tensor> = HashMap::new();
    let mut tensors = HashMap::new();
    for r in refs {
        if !storages.contains_key(&r.storage) {
            let name = format!("{prefix}data/{}", r.storage);
            let data =
                read_member(&mut archive, &name, u64::MAX).map_err(|e| PickleError::Storage {
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

/// `data.pkl` holds the object graph, not the tensors: a real one is kilobytes.
const MAX_PICKLE_BYTES: u64 = 256 << 20;

/// Reads one archive member, never more than its header declares (nor `cap`): a header that
/// lies about the size, or a compression bomb behind it, is an error, not an allocation.
fn read_member(
    archive: &mut zip::ZipArchive<std::fs::File>,
    name: &str,
    cap: u64,
) -> Result<Vec<u8>, String> {
    let f = archive.by_name(name).map_err(|e| e.to_string())?;
    let declared = f.size();
    if declared > cap {
        return Err(format!("{declared} bytes, more than the {cap} allowed"));
    }
    let mut data = Vec::new();
    f.take(declared.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|e| e.to_string())?;
    if data.len() as u64 != declared {
        return Err(format!(
            "{} bytes where the archive declares {declared}",
            data.len()
        ));
    }
    Ok(data)
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

/// A node of the object graph while unpickling. Containers hold node ids, so every reference to
/// an object (the memo, DUP, nesting) is the same object, as in Python: a dict memoised before its
/// items are set and fetched later has those items.
#[derive(Debug)]
enum Node {
    Leaf(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Object(String, usize),
}

/// How far shared references may expand when the graph becomes a tree: nodes plus string bytes.
/// A small malicious pickle that nests references to references (x = [y, y], y = [z, z] …) would
/// otherwise grow exponentially.
const EXPANSION_BASE: usize = 8 << 20;
/// Deeper nesting than any checkpoint has is refused rather than risking the thread's stack.
const MAX_DEPTH: usize = 512;

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<usize>,
    memo: HashMap<u32, usize>,
    nodes: Vec<Node>,
    /// Units left for turning the graph into values ([`EXPANSION_BASE`] + 4 per input byte).
    budget: usize,
}

impl<'a> Unpickler<'a> {
    fn new(data: &'a [u8]) -> Self {
        Unpickler {
            data,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            nodes: Vec::new(),
            budget: EXPANSION_BASE.saturating_add(data.len().saturating_mul(4)),
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

    fn push(&mut self, node: Node) {
        self.nodes.push(node);
        self.stack.push(self.nodes.len() - 1);
    }

    fn leaf(&mut self, v: Value) {
        self.push(Node::Leaf(v));
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.err("stack underflow"),
        }
    }

    fn is_mark(&self, id: usize) -> bool {
        matches!(self.nodes[id], Node::Leaf(Value::Mark))
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let Some(i) = self.stack.iter().rposition(|v| self.is_mark(*v)) else {
            return self.err("no MARK on the stack");
        };
        let items = self.stack.split_off(i + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&self) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(id) => Ok(*id),
            None => self.err("stack underflow"),
        }
    }

    fn string(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(Value::Str(s.to_owned())),
            Err(_) => self.err("invalid UTF-8 in a string"),
        }
    }

    /// The object graph below `id` as a tree of values, shared references copied within the
    /// budget; a reference back to an object being expanded (a cycle) becomes `None`.
    fn value(&mut self, id: usize) -> Result<Value, PickleError> {
        let mut open = Vec::new();
        self.value_at(id, &mut open)
    }

    fn value_at(&mut self, id: usize, open: &mut Vec<usize>) -> Result<Value, PickleError> {
        if open.contains(&id) {
            return Ok(Value::None);
        }
        if open.len() >= MAX_DEPTH {
            return self.err(format!("objects nested deeper than {MAX_DEPTH}"));
        }
        let cost = match &self.nodes[id] {
            Node::Leaf(Value::Str(s)) => 1 + s.len(),
            Node::Leaf(Value::Bytes(b)) => 1 + b.len(),
            _ => 1,
        };
        self.budget = match self.budget.checked_sub(cost) {
            Some(left) => left,
            None => {
                return self.err(
                    "shared references expand beyond the size limit (a malicious or corrupt pickle)",
                );
            }
        };
        open.push(id);
        let children = |ids: &[usize]| ids.to_vec();
        let v = match &self.nodes[id] {
            Node::Leaf(v) => v.clone(),
            Node::List(ids) => {
                let ids = children(ids);
                Value::List(self.values_at(&ids, open)?)
            }
            Node::Tuple(ids) => {
                let ids = children(ids);
                Value::Tuple(self.values_at(&ids, open)?)
            }
            Node::Dict(items) => {
                let items = items.clone();
                let mut out = Vec::with_capacity(items.len());
                for (k, v) in items {
                    out.push((self.value_at(k, open)?, self.value_at(v, open)?));
                }
                Value::Dict(out)
            }
            Node::Object(name, state) => {
                let (name, state) = (name.clone(), *state);
                Value::Object(name, Box::new(self.value_at(state, open)?))
            }
        };
        open.pop();
        Ok(v)
    }

    fn values_at(
        &mut self,
        ids: &[usize],
        open: &mut Vec<usize>,
    ) -> Result<Vec<Value>, PickleError> {
        ids.iter().map(|i| self.value_at(*i, open)).collect()
    }

    /// Adds `(key, value)` pairs to the dict (or object state) `target`.
    fn set_items(&mut self, target: usize, items: Vec<(usize, usize)>) {
        match &mut self.nodes[target] {
            Node::Dict(d) => d.extend(items),
            Node::Object(_, state) => {
                let state = *state;
                if !matches!(self.nodes[state], Node::Dict(_)) {
                    self.nodes.push(Node::Dict(Vec::new()));
                    let fresh = self.nodes.len() - 1;
                    if let Node::Object(_, s) = &mut self.nodes[target] {
                        *s = fresh;
                    }
                    self.set_items(target, items);
                } else if let Node::Dict(d) = &mut self.nodes[state] {
                    d.extend(items);
                }
            }
            _ => {}
        }
    }

    fn memoize(&mut self, i: u32) -> Result<(), PickleError> {
        let top = self.top()?;
        self.memo.insert(i, top);
        Ok(())
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
                b'.' => {
                    let top = self.pop()?;
                    return self.value(top);
                }
                b'}' => self.push(Node::Dict(Vec::new())),
                b']' => self.push(Node::List(Vec::new())),
                b')' => self.push(Node::Tuple(Vec::new())),
                0x8f => self.push(Node::List(Vec::new())), // EMPTY_SET, as a list
                b'(' => self.leaf(Value::Mark),
                b'N' => self.leaf(Value::None),
                0x88 => self.leaf(Value::Bool(true)),
                0x89 => self.leaf(Value::Bool(false)),
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.leaf(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.leaf(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.leaf(Value::Int(v as i64));
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
                    self.leaf(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.leaf(Value::Float(f64::from_be_bytes(a)));
                }
                b'X' => {
                    let n = self.le(4)? as usize;
                    let v = self.string(n)?;
                    self.leaf(v);
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let v = self.string(n)?;
                    self.leaf(v);
                }
                0x8d => {
                    let n = usize::try_from(self.le(8)?).unwrap_or(usize::MAX);
                    let v = self.string(n)?;
                    self.leaf(v);
                }
                b'U' => {
                    let n = usize::from(self.u8()?);
                    let v = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(v));
                }
                b'T' | b'B' => {
                    let n = self.le(4)? as usize;
                    let v = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(v));
                }
                b'C' => {
                    let n = usize::from(self.u8()?);
                    let v = self.take(n)?.to_vec();
                    self.leaf(Value::Bytes(v));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return self.err("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(Node::Tuple(items));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Dict(pairs(items)));
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items)); // FROZENSET
                }
                0x90 => {
                    let items = self.pop_mark()?; // ADDITEMS
                    let top = self.top()?;
                    if let Node::List(l) = &mut self.nodes[top] {
                        l.extend(items);
                    }
                }
                b'a' => {
                    let v = self.pop()?;
                    let top = self.top()?;
                    match &mut self.nodes[top] {
                        Node::List(l) => l.push(v),
                        _ => return self.err("APPEND to a non-list"),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let top = self.top()?;
                    match &mut self.nodes[top] {
                        Node::List(l) => l.extend(items),
                        Node::Object(..) => {}
                        _ => return self.err("APPENDS to a non-list"),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let top = self.top()?;
                    self.set_items(top, vec![(k, v)]);
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let top = self.top()?;
                    self.set_items(top, pairs(items));
                }
                b'q' => {
                    let i = u32::from(self.u8()?);
                    self.memoize(i)?;
                }
                b'r' => {
                    let i = self.le(4)? as u32;
                    self.memoize(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memoize(i)?;
                }
                b'h' | b'j' => {
                    let i = if op == b'h' {
                        u32::from(self.u8()?)
                    } else {
                        self.le(4)? as u32
                    };
                    match self.memo.get(&i) {
                        Some(id) => self.stack.push(*id),
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
                    let top = self.top()?;
                    self.stack.push(top);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.leaf(Value::Global(format!("{module}.{name}")));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (&self.nodes[module], &self.nodes[name]) {
                        (Node::Leaf(Value::Str(m)), Node::Leaf(Value::Str(n))) => {
                            let global = Value::Global(format!("{m}.{n}"));
                            self.leaf(global);
                        }
                        _ => return self.err("STACK_GLOBAL needs two strings"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let pid = self.value(pid)?;
                    let v = self.persistent(pid)?;
                    self.leaf(v);
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.reduce(callable, args)?;
                }
                0x92 => {
                    // NEWOBJ_EX: cls, args, kwargs
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.reduce(callable, args)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let top = self.top()?;
                    // Parameter / OrderedDict metadata on tensors and dicts is dropped.
                    if let Node::Object(_, s) = &mut self.nodes[top] {
                        *s = state;
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

    /// Pushes what calling `callable(*args)` stands for: a tensor, an empty dict, or an inert
    /// object holding its arguments (never a call).
    fn reduce(&mut self, callable: usize, args: usize) -> Result<(), PickleError> {
        let name = match &self.nodes[callable] {
            Node::Leaf(Value::Global(name)) => name.clone(),
            _ => {
                self.push(Node::Object("<reduce>".into(), args));
                return Ok(());
            }
        };
        match name.as_str() {
            "torch._utils._rebuild_tensor_v2"
            | "torch._utils._rebuild_tensor"
            | "torch._utils._rebuild_parameter"
            | "torch._utils._rebuild_parameter_with_state" => {
                let args = match self.value(args)? {
                    Value::Tuple(a) => a,
                    other => vec![other],
                };
                let t = self.tensor(&name, args)?;
                self.leaf(t);
            }
            "collections.OrderedDict" | "builtins.dict" => self.push(Node::Dict(Vec::new())),
            _ => {
                // The object's state is its argument tuple until BUILD replaces it.
                let state = match &self.nodes[args] {
                    Node::Tuple(_) => args,
                    _ => {
                        self.nodes.push(Node::Tuple(vec![args]));
                        self.nodes.len() - 1
                    }
                };
                self.push(Node::Object(name, state));
            }
        }
        Ok(())
    }

    fn tensor(&self, name: &str, args: Vec<Value>) -> Result<Value, PickleError> {
        if name.starts_with("torch._utils._rebuild_parameter") {
            return match args.into_iter().next() {
                Some(t @ Value::Tensor(_)) => Ok(t),
                _ => self.err("_rebuild_parameter without a tensor"),
            };
        }
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
}

fn pairs(items: Vec<usize>) -> Vec<(usize, usize)> {
    items.chunks_exact(2).map(|kv| (kv[0], kv[1])).collect()
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

    #[test]
    fn a_memoised_dict_is_the_same_dict_when_fetched_after_its_items_are_set() {
        // Python: d = {}; memo[0] = d; d['a'] = 1; return [d, memo[0]]  (protocol 2, hand-written)
        // ]  (  }  q0  X'a'  K1  s  h0  e  .   — the list holds the dict twice, by reference.
        let v = Unpickler::new(b"\x80\x02](}q\x00X\x01\x00\x00\x00aK\x01sh\x00e.")
            .run()
            .expect("valid pickle");
        let Value::List(items) = v else {
            panic!("a list: {v:?}")
        };
        assert_eq!(items.len(), 2);
        for d in &items {
            assert!(matches!(d.get("a"), Some(Value::Int(1))), "{d:?}");
        }
        // A memo fetch is the object itself: appending to it changes the list that is returned.
        let v = Unpickler::new(b"\x80\x02]q\x00h\x00K\x07a0.")
            .run()
            .expect("valid pickle");
        assert!(matches!(&v, Value::List(l) if l.len() == 1), "{v:?}");
    }

    #[test]
    fn shared_references_cannot_expand_exponentially() {
        // x0 = 'aaaa…'; x(k+1) = (xk, xk), 60 times: 2^60 leaves from a few hundred bytes.
        let mut p = b"\x80\x02X\x00\x01\x00\x00".to_vec();
        p.extend(std::iter::repeat_n(b'a', 256));
        p.extend(b"q\x00");
        for k in 0..60u8 {
            p.extend([b'h', k, b'h', k, 0x86, b'q', k + 1]);
        }
        p.push(b'.');
        let started = std::time::Instant::now();
        let e = Unpickler::new(&p).run().expect_err("refused");
        assert!(e.to_string().contains("expand beyond"), "{e}");
        assert!(started.elapsed().as_secs() < 20, "refused quickly");
        // A cycle (a list containing itself) ends, with the back reference as None.
        let v = Unpickler::new(b"\x80\x02]q\x00h\x00a.")
            .run()
            .expect("cycle");
        assert!(
            matches!(&v, Value::List(l) if matches!(l.as_slice(), [Value::None])),
            "{v:?}"
        );
    }
}
