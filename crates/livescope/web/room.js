// A broadcast's room (docs/interaction.md): one WebSocket, messages as objects or arrays
// of objects, reconnecting while the broadcast is live.

/**
 * Joins the room. `on(msg)` gets every server message; `onState(s)` "open", "closed"
 * (for good: `stop()` was called or `shouldRetry()` said no) or "retrying".
 * `token` is the playback token's query ("?token=...", or "") or a function giving the
 * current one: a reconnect hours later needs a fresh token, which the page's own refresh of
 * the broadcast brings.
 * Returns {send(obj) -> bool, stop()}.
 */
export function joinRoom(id, token, { on, onState, shouldRetry = async () => true }) {
  let ws = null;
  let stopped = false;
  let failures = 0;
  let timer = null;
  const url = () => `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/broadcasts/${encodeURIComponent(id)}/live${(typeof token === "function" ? token() : token) || ""}`;

  function connect() {
    ws = new WebSocket(url());
    ws.onopen = () => { failures = 0; onState?.("open"); };
    ws.onmessage = (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      for (const msg of Array.isArray(data) ? data : [data]) {
        try { on(msg); } catch (err) { console.error(err); }
      }
    };
    ws.onclose = async () => {
      ws = null;
      if (stopped) return;
      failures++;
      // Keep trying (at most every 8 s) for as long as the broadcast is live: a viewer
      // offline for a minute gets the chat back with the video.
      const retry = await shouldRetry();
      if (stopped) return;
      if (!retry) {
        onState?.("closed");
        return;
      }
      onState?.("retrying");
      timer = setTimeout(connect, Math.min(8000, 500 * 2 ** failures));
    };
  }
  connect();
  return {
    send(msg) {
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(JSON.stringify(msg));
      return true;
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      ws?.close();
    },
  };
}
