// node chat_ref.mjs NPM_DIR CONFIG_JSON CONVERSATIONS_JSON: what @huggingface/jinja renders
// from CONFIG_JSON's chat_template for each conversation, add_generation_prompt false then
// true, bos_token/eos_token from the config (as transformers passes them); one line per
// render: hex of the UTF-8 bytes, or "error" when rendering throws. chat_render prints the
// same lines for tr_jinja.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [npmDir, configPath, convPath] = process.argv.slice(2);
const require = createRequire(path.resolve(npmDir, "package.json"));
const { Template } = require("@huggingface/jinja");
const config = JSON.parse(readFileSync(configPath, "utf8"));
const convs = JSON.parse(readFileSync(convPath, "utf8"));
const tok = (v) => (v && typeof v === "object" ? v.content : v ?? undefined);
const template = new Template(config.chat_template);
const out = [];
for (const messages of convs) {
  for (const add_generation_prompt of [false, true]) {
    try {
      const s = template.render({
        messages, add_generation_prompt,
        bos_token: tok(config.bos_token), eos_token: tok(config.eos_token),
      });
      out.push(Buffer.from(s, "utf8").toString("hex"));
    } catch (e) {
      out.push("error");
    }
  }
}
process.stdout.write(out.join("\n") + "\n");
