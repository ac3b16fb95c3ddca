#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/ and dictionaries fuzz/dicts/.

Seeds are small valid (and a few nearly valid) inputs in each target's input
layout (see the comment at the top of each fuzz/<target>_fuzzer.cc), so that
the fuzzers start past the outer format checks. Run from anywhere; rewrites
the seed files it names and leaves others alone. Python 3 standard library only.
"""
import json
import os
import struct

FUZZ = os.path.dirname(os.path.abspath(__file__))


def write_corpus(target, seeds):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in seeds:
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def write_dict(target, tokens):
    d = os.path.join(FUZZ, "dicts")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, target + ".dict"), "w") as f:
        for t in tokens:
            esc = "".join(c if 0x20 <= ord(c) < 0x7f and c not in '"\\' else "\\x%02x" % ord(c)
                          for c in t)
            f.write('"%s"\n' % esc)


TEXTS = [
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.\n\nSecond paragraph.",
    "caf\u00e9 na\u00efve \u4f60\u597d \U0001f600 \u00e9\u0301",
    'quotes " and \\ backslashes \\n \\u00e9 \t tabs \r\n',
    "<|endoftext|> spelled as text",
    "   leading spaces and trailing   ",
    "\x00\x01\x7f control",
    "'s 're 've 'm 'll 'd don't 123 4567 !!!",
]

# ---- http_request (the first byte seeds how the rest is cut into reads)
body = json.dumps({"model": "fox-tiny", "prompt": "Hello", "max_tokens": 4})
write_corpus("http_request", [(name, b"\x07" + data.encode()) for name, data in [
    ("get_health", "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    ("post_completion", "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\n"
     "Content-Type: application/json\r\nAuthorization: Bearer k\r\n"
     "Content-Length: %d\r\n\r\n%s" % (len(body), body)),
    ("chunked", "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
     "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n"),
    ("preflight", "OPTIONS /v1/completions HTTP/1.1\r\nHost: a\r\n"
     "Origin: https://allowed.example\r\nAccess-Control-Request-Method: POST\r\n"
     "Access-Control-Request-Headers: content-type, authorization\r\n\r\n"),
    ("pipelined", "GET /v1/models HTTP/1.1\r\nHost: a\r\n\r\n"
     "POST /tokenize HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
     "GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
    ("expect_continue", "POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\n"
     "Content-Length: 5000\r\n\r\n"),
    ("http10_close", "GET /ready HTTP/1.0\r\nOrigin: http://localhost:3000\r\n"
     "X-Request-Id: abc\r\nX-Request-Id: def\r\n\r\n"),
    ("folded_and_odd", "GET * HTTP/1.1\r\nHost: a\r\nX-A:  spaced value \r\n"
     "Content-Length: 0\r\nContent-Length: 0\r\n\r\n"),
]])
write_dict("http_request", [
    "GET", "POST", "OPTIONS", "HEAD", "PUT", " HTTP/1.1\r\n", " HTTP/1.0\r\n", "\r\n", "\r\n\r\n",
    "Content-Length: ", "Transfer-Encoding: chunked", "Connection: close",
    "Connection: keep-alive", "Expect: 100-continue", "Origin: ", "https://allowed.example",
    "Access-Control-Request-Method: ", "Access-Control-Request-Headers: ", "Host: ",
    "X-Request-Id: ", "Authorization: Bearer ", "/v1/completions", "/v1/chat/completions",
    "/v1/models", "/health", "/metrics", "?", "0\r\n\r\n", ";", ":",
])

# ---- completion_request / chat_request
COMMON = ["model", "frequency_penalty", "presence_penalty", "repetition_penalty", "logit_bias",
          "max_tokens", "n", "seed", "stop", "stream", "stream_options", "include_usage",
          "temperature", "top_p", "top_k", "min_p", "stop_token_ids", "include_stop_str_in_output",
          "ignore_eos", "min_tokens", "logprobs", "best_of", "echo", "add_special_tokens",
          "truncate_prompt_tokens", "request_id", "user", "metadata", "skip_special_tokens",
          "use_beam_search", "length_penalty", "priority", "response_format", "type", "text",
          "json_object", "structured_outputs", "guided_json", "prompt_logprobs", "suffix",
          "mm_processor_kwargs", "fox-tiny"]
JSON_TOKENS = ["{", "}", "[", "]", ",", ":", "\"", "true", "false", "null", "-1", "0", "1e309",
               "1.5", "9223372036854775808", "\\u0000", "\\ud800", "\\\"", "-0", "1e-400"]

completions = [
    {"model": "fox-tiny", "prompt": "Hello"},
    {"prompt": ["a", "b c"], "n": 2, "max_tokens": 3, "temperature": 0, "stop": ["\n", "x"],
     "stream": True, "stream_options": {"include_usage": True}},
    {"prompt": [50256, 15496, 11], "logprobs": 2, "echo": False, "seed": 7, "top_k": 5,
     "top_p": 0.9, "min_p": 0.1},
    {"prompt": [[1, 2], [3]], "logit_bias": {"50256": -100}, "stop_token_ids": [198],
     "min_tokens": 1, "ignore_eos": True, "include_stop_str_in_output": True},
    {"prompt": "x" * 40, "truncate_prompt_tokens": 4, "add_special_tokens": False,
     "request_id": "req-1", "user": "u", "frequency_penalty": 0.5, "presence_penalty": -0.5,
     "repetition_penalty": 1.1},
    {"prompt": "hi", "response_format": {"type": "text"}, "use_beam_search": False,
     "best_of": 1, "max_tokens": None},
    {"model": "other", "prompt": "hi"},
    {"prompt": "caf\u00e9 \U0001f600", "max_tokens": 1e309},
]
write_corpus("completion_request",
             [("c%d" % i, json.dumps(c, ensure_ascii=(i % 2 == 0))) for i, c in enumerate(completions)]
             + [("raw_escapes", '{"prompt": "a\\u00e9\\ud83d\\ude00\\n", "n": 1}')])
write_dict("completion_request", JSON_TOKENS + COMMON + ["prompt"])

chats = [
    {"model": "fox-tiny", "messages": [{"role": "user", "content": "Hello"}]},
    {"messages": [{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello!"},
                  {"role": "user", "content": "Again"}],
     "max_completion_tokens": 5, "logprobs": True, "top_logprobs": 2, "stream": True},
    {"messages": [{"role": "developer", "content": [{"type": "text", "text": "part 1"},
                                                    {"type": "text", "text": "part 2"}]}],
     "add_generation_prompt": False, "add_special_tokens": True},
    {"messages": [{"role": "user", "content": "x", "name": "n"}], "tools": [],
     "tool_choice": "none", "parallel_tool_calls": False, "chat_template_kwargs": {},
     "continue_final_message": False, "modalities": ["text"], "echo": False},
    {"messages": [{"role": "tool", "content": "?"}]},
    {"messages": [], "temperature": 2.5},
    {"messages": [{"role": "user", "content": None}]},
]
write_corpus("chat_request", [("m%d" % i, json.dumps(c, ensure_ascii=(i % 2 == 1)))
                              for i, c in enumerate(chats)])
write_dict("chat_request", JSON_TOKENS + COMMON + [
    "messages", "role", "content", "system", "developer", "user", "assistant", "tool", "name",
    "max_completion_tokens", "top_logprobs", "add_generation_prompt", "tools", "tool_choice",
    "parallel_tool_calls", "functions", "function_call", "chat_template", "chat_template_kwargs",
    "continue_final_message", "documents", "modalities", "image_url"])


# ---- chat_template (FuzzedDataProvider layout: strings from the front,
# integers and the final bool from the back)
def fdp_string(s):
    return s.encode().replace(b"\\", b"\\\\") + b"\\;"


def chat_template_seed(template_text, messages, add_generation_prompt=True):
    front = fdp_string(template_text)
    back = []  # consumed from the end, first consumed = last byte
    for role_index, role_text, content in messages:
        back.append(role_index)
        if role_index == 6:
            front += fdp_string(role_text)
        front += fdp_string(content)
    back.append(1 if add_generation_prompt else 0)
    return front + bytes(reversed(back))


default_messages = [(0, "", "You are terse."), (2, "", "Hi {content} there"),
                    (3, "", "Hello."), (2, "", "caf\u00e9")]
write_corpus("chat_template", [
    ("default", chat_template_seed("", default_messages)),
    ("custom", chat_template_seed(json.dumps({
        "system": "<s>{content}</s>", "user": "[INST] {content} [/INST]",
        "assistant": "{content}\n", "generation_prompt": "", "add_bos": False,
        "stop": ["[INST]"]}), default_messages, False)),
    ("bad_pattern", chat_template_seed('{"user": "no placeholder"}', [(2, "", "x")])),
    ("unknown_role", chat_template_seed('{"assistant": "A: {content}"}',
                                        [(1, "", "dev"), (6, "robot", "beep"), (4, "", "t")])),
    ("bad_json", chat_template_seed('{"stop": [""], "add_bos": 1', [(5, "", "")])),
])
write_dict("chat_template", ["{content}", "\"system\"", "\"user\"", "\"assistant\"",
                             "\"generation_prompt\"", "\"add_bos\"", "\"stop\"", "\\\\;"]
           + JSON_TOKENS)

# ---- tokenizer / json_escape / incremental_detokenizer
write_corpus("tokenizer", [("t%d_%d" % (i, mode), bytes([mode]) + t.encode())
                           for i, t in enumerate(TEXTS) for mode in (0, 1, 2, 3)
                           if (i + mode) % 2 == 0 or i < 3]
             + [("invalid_utf8", b"\x01abc\xff\xfe\xc3"), ("surrogate", b"\x00\xed\xa0\x80")])
write_corpus("json_escape", [("e%d" % i, t) for i, t in enumerate(TEXTS)]
             + [("escapes", r"\u00e9\ud83d\ude00\ud800x\u12\q\"\\\/\b\f\n\r\t\u00E9"),
                ("invalid", b"\xc3(\xa0\xe2\x28\xa1\\")])


def ids_bytes(ids):
    return b"".join(struct.pack("<H", i) for i in ids)


write_corpus("incremental_detokenizer", [
    ("text_plain", b"\x02" + TEXTS[2].encode()),
    ("text_escaped", b"\x03" + "a \\u00e9 \\ud83d\\ude00 \\n \\\" \\x \\u12 \\ud800 end".encode()),
    ("text_escaped_split", b"\x03" + b"\\u00e9\\u00e8\\ud83d\\ude00\\\\\\"),
    ("ids_plain", b"\x00" + ids_bytes([15496, 11, 995, 0, 50256, 8582, 247, 222])),
    ("ids_escaped", b"\x01" + ids_bytes([59, 84, 405, 68, 24, 50256, 59, 77])),
    ("ids_unknown", b"\x00" + ids_bytes([15496, 0xffff, 0xff80, 11])),
])

# ---- safetensors_header
def safetensors(header, data=b""):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


tensors = {"__metadata__": {"format": "pt"},
           "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
           "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]},
           "empty": {"dtype": "I64", "shape": [0, 5], "data_offsets": [22, 22]}}
data = bytes(range(22))
write_corpus("safetensors_header", [
    ("raw_valid", b"\x00" + safetensors(tensors, data)),
    ("framed_valid", b"\x01" + json.dumps(tensors).encode() + b"\x00" + data),
    ("framed_overlap", b"\x01" + json.dumps({
        "x": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
        "y": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}}).encode() + b"\x00abcd"),
    ("framed_scalar", b"\x01" + json.dumps({"s": {"dtype": "F64", "shape": [],
                                                  "data_offsets": [0, 8]}}).encode()
     + b"\x0012345678"),
    ("raw_truncated", b"\x00" + struct.pack("<Q", 1000) + b"{}"),
    ("index", b"\x03" + json.dumps({"metadata": {"total_size": 22}, "weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}).encode()),
    ("index_bad", b"\x03" + json.dumps({"weight_map": {"a": "../x"}}).encode()),
])
write_dict("safetensors_header", JSON_TOKENS + [
    "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"__metadata__\"", "\"F32\"", "\"BF16\"",
    "\"F16\"", "\"I64\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", "\"C64\"", "\"weight_map\"",
    "\"metadata\"", "\"total_size\"", "\x00\x00\x00\x00\x00\x00\x00", "18446744073709551615"])

# ---- config_json
tiny = {"architectures": ["ForgettingTransformerForCausalLM"], "attention_bias": False,
        "bos_token_id": None, "eos_token_id": None, "fgate_type": "full",
        "hidden_act": "swish", "hidden_ratio": 4, "hidden_size": 256, "intermediate_size": 768,
        "model_type": "forgetting_transformer-project_fox", "norm_eps": 1e-06, "num_heads": 4,
        "num_hidden_layers": 4, "num_kv_heads": None, "ogate_act": "sigmoid", "qk_norm": True,
        "qk_norm_share_param_across_head": True, "rope_base": 500000.0,
        "tie_word_embeddings": False, "torch_dtype": "float32", "use_k_shift": True,
        "use_output_gate": True, "use_output_norm": True, "use_rope": False, "use_v_shift": True,
        "vocab_size": 50257, "window_size": None}
llama = dict(tiny, hidden_size=768, num_heads=12, num_hidden_layers=12, intermediate_size=None,
             use_k_shift=False, use_v_shift=False, qk_norm=False, use_output_gate=False,
             use_output_norm=False, bos_token_id=50256, eos_token_id=50256)
del llama["qk_norm_share_param_across_head"]
write_corpus("config_json", [
    ("tiny", json.dumps(tiny, indent=2)),
    ("llama_null_intermediate", json.dumps(llama)),
    ("rope", json.dumps(dict(tiny, use_rope=True))),
    ("gqa", json.dumps(dict(tiny, num_kv_heads=2))),
    ("bad_heads", json.dumps(dict(tiny, num_heads=3))),
    ("huge", json.dumps(dict(tiny, hidden_size=2**30, num_heads=1, vocab_size=2**31 - 1,
                             num_hidden_layers=2**31 - 1, intermediate_size=2**31 - 1))),
])
write_dict("config_json", JSON_TOKENS + ['"%s"' % k for k in tiny] + [
    "2147483647", "2147483648", "\"ForgettingTransformerForCausalLM\"", "\"full\""])


# ---- grpc_request: hand-encoded protobuf (foxserve/v1/foxserve.proto)
def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 2:
        return key + varint(len(payload)) + payload
    if wire == 5:
        return key + struct.pack("<f", payload)
    if wire == 1:
        return key + struct.pack("<Q", payload)
    raise ValueError(wire)


def sampling(**kw):
    numbers = {"max_tokens": (1, 0), "temperature": (2, 5), "top_p": (3, 5), "top_k": (4, 0),
               "min_p": (5, 5), "repetition_penalty": (6, 5), "presence_penalty": (7, 5),
               "frequency_penalty": (8, 5), "seed": (9, 0), "min_tokens": (12, 0),
               "ignore_eos": (13, 0), "logprobs": (14, 0), "include_stop_str_in_output": (15, 0)}
    out = b""
    for k, v in kw.items():
        if k == "stop":
            out += b"".join(field(10, 2, s.encode()) for s in v)
        elif k == "stop_token_ids":
            out += field(11, 2, b"".join(varint(i) for i in v))
        else:
            num, wire = numbers[k]
            out += field(num, wire, v)
    return out


write_corpus("grpc_request", [
    ("text", field(1, 2, b"Hello") + field(3, 2, sampling(max_tokens=4, temperature=0.0))),
    ("ids", field(2, 2, field(1, 2, b"".join(varint(i) for i in [50256, 15496, 11])))
     + field(4, 2, b"req-1")),
    ("full_sampling", field(1, 2, "caf\u00e9 \U0001f600".encode()) + field(3, 2, sampling(
        max_tokens=8, temperature=0.7, top_p=0.9, top_k=40, min_p=0.05, repetition_penalty=1.1,
        presence_penalty=0.2, frequency_penalty=-0.2, seed=42, stop=["\n", "end"],
        stop_token_ids=[198, 50256], min_tokens=1, ignore_eos=1, logprobs=3,
        include_stop_str_in_output=1))),
    ("bad_values", field(2, 2, field(1, 0, 60000) + field(1, 0, -1))
     + field(3, 2, sampling(max_tokens=10**9, top_k=-5, logprobs=2**32 - 1, temperature=-1.0))),
    ("empty_text", field(1, 2, b"")),
    ("empty", b""),
])

if __name__ == "__main__":
    for t in sorted(os.listdir(os.path.join(FUZZ, "corpus"))):
        files = os.listdir(os.path.join(FUZZ, "corpus", t))
        print(t, len(files), "seeds")
