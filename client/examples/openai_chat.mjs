// openai_chat.mjs - slorad's chat completions through the official OpenAI
// Node SDK (openai v4). The model must carry a chat template.
//
//   cd client/examples && npm install && \
//   SLORAD_URL=http://127.0.0.1:8080 SLORAD_KEY=<key> SLORAD_MODEL=<id> node openai_chat.mjs
//
// One chat completion and one streamed chat completion at temperature 0;
// prints one JSON line for each (tests/e2e/chat_api.sh reads them).
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: (process.env.SLORAD_URL || "http://127.0.0.1:8080") + "/v1",
  apiKey: process.env.SLORAD_KEY || "unused-when-auth-is-off",
});
const request = {
  model: process.env.SLORAD_MODEL,
  messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Say hello." },
  ],
  max_tokens: 8,
  temperature: 0,
};

const chat = await client.chat.completions.create(request);
console.log(JSON.stringify({
  content: chat.choices[0].message.content,
  role: chat.choices[0].message.role,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
}));

const stream = await client.chat.completions.create({
  ...request, stream: true, stream_options: { include_usage: true },
});
let content = "";
let role = null;
let finish = null;
let usage = null;
for await (const chunk of stream) {
  const delta = chunk.choices[0]?.delta;
  role = delta?.role ?? role;
  content += delta?.content ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
  usage = chunk.usage ?? usage;
}
console.log(JSON.stringify({ streamed: content, role, finish_reason: finish, usage }));
