// Compiled by `npm run typecheck` (and the package test): the declarations
// must describe the API the README shows.
import MeridianClientDefault, { MeridianClient, MeridianError, State, backoffDelay, tokenExpiry } from '../../src/meridian.js';
import type { Message, JoinInfo, StateEvent, Member, PublishAck, Welcome } from '../../src/meridian.js';

const client = new MeridianClient({
  url: ['wss://chat.example/', 'wss://eu-west.chat.example/'],
  token: async () => 'jwt',
  backoff: { initial: 250, max: 10000 },
});
const same: typeof MeridianClient = MeridianClientDefault;
void same;

client.on('state', (ev: StateEvent) => {
  const s: 'connecting' | 'connected' | 'disconnected' | 'reconnecting' = ev.state;
  console.log(s, ev.reason, ev.delay ?? 0);
});
client.on('message', (m: Message) => console.log(m.room, m.from, m.region, m.data, m.seq));
client.on('commit', (c) => console.log(c.msg_id, c.seq, c.message?.data));
client.on('ordered', (c) => console.log(c.seq));
client.on('gap', (g) => console.log(g.after, g.last_seq));
client.on('members', (ev) => ev.members.forEach((m: Member) => console.log(m.user, m.sessions)));
client.on('error', (e: MeridianError) => console.log(e.code, e.final, e.retryable));

async function main(): Promise<void> {
  const w: Welcome = await client.connect();
  console.log(w.region, client.region, State.CONNECTED);
  const info: JoinInfo = await client.join('general', { presence: true });
  if (info.recovered === false) console.log(info.last_seq);
  const ack: PublishAck = await client.publish('general', { text: 'hi', n: 1, tags: ['a'] });
  console.log(ack.msg_id, ack.mid);
  await client.publish('general', 'plain', { mid: client.newMid() });
  const members: Member[] = await client.presence('general');
  console.log(members.length, client.members('general'), client.lastSeq('general'), client.outboxSize, client.urls);
  const rtt: number = await client.ping();
  console.log(rtt, backoffDelay(2), tokenExpiry('a.b.c'));
  const rewound = await client.join('recent', { rewind: 50 });
  console.log(rewound.rewind, rewound.history);
  const sent: boolean = client.signal('recent', { typing: true });
  client.on('signal', (ev) => console.log(ev.from, ev.data, sent));
  client.on('refreshed', (ev) => console.log(ev.exp));
  client.on('left', (ev) => console.log(ev.room, ev.reason));
  await client.leave('general');
  client.close();
}
void main;
new MeridianClient({ url: 'wss://x/', getToken: async () => 'jwt' });

// @ts-expect-error: url is required
new MeridianClient({ token: 'x' });
// @ts-expect-error: data must be JSON
void client.publish('general', () => 1);
