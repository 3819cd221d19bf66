/** Statuses after which a media's SSE stream ends. */
const TERMINAL = ['READY', 'REJECTED', 'FAILED', 'CANCELLED', 'EXPIRED', 'DELETED'];

/** The SSE stream of a media until its terminal status: each event's name and the media's status in it. */
export async function sseEvents(url: string, token: string): Promise<Array<{ event: string; status: string; playable: boolean }>> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } });
  if (!res.ok) throw new Error(`event stream answered ${res.status}`);
  const seen: Array<{ event: string; status: string; playable: boolean }> = [];
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!event || !data) continue;
      const media = JSON.parse(data) as { status: string; playback: unknown };
      seen.push({ event, status: media.status, playable: !!media.playback });
      if (event === 'status' && TERMINAL.includes(media.status)) return seen;
    }
  }
  return seen;
}
