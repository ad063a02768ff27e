// A poll as shown to viewers (buttons to vote) and to the broadcaster (no buttons): the
// question, its state, and per option a bar and the total (data-total).
import { h } from "./lib.js";

export function pollView(p, { totals = p.totals, state, onVote, voted, disabled = !onVote } = {}) {
  const sum = totals.reduce((a, n) => a + n, 0);
  const done = p.state !== "open";
  const best = Math.max(...totals);
  return [
    h("div.poll-head", {}, h("h2.poll-q", {}, p.question), h("span.poll-state", {}, state)),
    h("ul.poll-options", {}, p.options.map((o, i) => {
      const bar = h("span.poll-fill");
      bar.style.width = `${sum ? (100 * totals[i]) / sum : 0}%`;
      return h("li.poll-option" + (done && sum && totals[i] === best ? ".winner" : "") + (voted === i ? ".mine" : ""), {},
        onVote
          ? h("button.poll-btn", { type: "button", disabled, "aria-pressed": voted === i ? "true" : null, onclick: () => onVote(i) }, o)
          : h("span.poll-btn", {}, o),
        h("span.poll-bar", { "aria-hidden": "true" }, bar),
        h("span.total", { dataset: { total: totals[i] }, "aria-label": `${totals[i]} votes` }, String(totals[i])));
    })),
  ];
}
