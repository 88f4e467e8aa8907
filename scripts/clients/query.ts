// Compiled by scripts/check-clients.sh against the types openapi-typescript generates from
// /v1/schema/ (tsc --strict): the calls an integrator writes first, with no casts.
import createClient from "openapi-fetch";
import type { paths, components } from "./egret";

const client = createClient<paths>({ baseUrl: "http://127.0.0.1:8000" });

async function main(): Promise<void> {
  // The minimal documented body: no stream, knowledge_scope or max_sources.
  const { data, error } = await client.POST("/v1/query/", {
    body: { query: "How quickly must a personal data breach be notified?", domain: "privacy",
            category: "eu", mode: "compliance" },
  });
  if (error) throw new Error(error.detail);
  const answer: components["schemas"]["QueryAnswer"] = data;
  const page: number | null = answer.sources[0].page;
  const ms: number = answer.retrieval_ms;
  console.log(answer.response, page, ms);

  const docs = await client.GET("/v1/documents/", {});
  if (docs.data) {
    const next: string | null = docs.data.next;
    const first = docs.data.results[0];
    const status: "processing" | "ready" | "failed" = first.status;
    const by: string | null = first.uploaded_by;
    const domain: string | null = first.domain;
    console.log(next, status, by, domain);
  }
  const ledger = await client.GET("/v1/billings/ledger/", {});
  if (ledger.data) {
    const entry = ledger.data.results[0];
    const created: string = entry.created_at;
    const actor = entry.actor;  // object or null
    console.log(created, actor === null ? "system" : actor.type, entry.reservation_id);
  }
  const me = await client.GET("/auth/me/", {});
  if (me.data) console.log(me.data.user?.email ?? null, me.data.api_key?.key_prefix ?? null);
  const plans = await client.GET("/v1/billings/plans/", {});
  if (plans.data) { const credits: number = plans.data[0].monthly_credits; console.log(credits); }
  const models = await client.GET("/v1/models/", {});
  if (models.data) { const tier: string = models.data[0].tier; console.log(tier); }
  const session = await client.GET("/v1/sessions/{session_id}/", { params: { path: { session_id: answer.session_id } } });
  if (session.data) { const at: string = session.data.created_at; console.log(at); }
  const messages = await client.GET("/v1/sessions/{session_id}/messages/", { params: { path: { session_id: answer.session_id } } });
  if (messages.data) { const used: number = messages.data[0].credits_used; console.log(used); }
  await client.POST("/auth/register/", { body: { email: "a@example.com", password: "x-long-password-1" } });
  await client.POST("/v1/orgs/{slug}/members/", { params: { path: { slug: "demo" } }, body: { email: "a@example.com" } });
  // Stream events, typed from the components the x-egret-stream extension points to.
  type StreamEvent = components["schemas"]["QueryStreamEvent"];
  const done: StreamEvent = JSON.parse("{}");
  if (done.type === "done") { const r: number = done.retrieval_ms; console.log(r, done.retrieval_latency_ms); }
}
main();
