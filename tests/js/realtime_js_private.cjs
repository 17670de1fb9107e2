// Drives realtime-js on a private channel (Realtime Authorization) for the Python tests, as the docs show it:
//   supabase.channel('trip:<id>', { config: { private: true } }) after setAuth(<user's access token>).
// Prints every event as one JSON line on stdout. Commands arrive as JSON lines on stdin:
//   {"broadcast": {"event": ..., "payload": ...}} | {"track": {...}} | {"setAuth": "<jwt>"} | {"close": true}
const { RealtimeClient } = require('@supabase/realtime-js')
const WebSocket = require('ws')
const readline = require('readline')

const [url, apikey, token, topic, key] = process.argv.slice(2)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const client = new RealtimeClient(url, { params: { apikey }, transport: WebSocket, heartbeatIntervalMs: 5000 })
client.setAuth(token)
const channel = client.channel(topic, { config: { private: true, broadcast: { self: false }, presence: { key } } })
for (const event of ['hello', 'done', 'INSERT']) {
  channel.on('broadcast', { event }, (p) => out({ kind: 'broadcast', event: p.event, payload: p.payload }))
}
channel
  .on('presence', { event: 'sync' }, () => out({ kind: 'presence', state: Object.keys(channel.presenceState()) }))
  .on('system', {}, (p) => out({ kind: 'system', payload: p }))
  .subscribe((status, err) => out({ kind: 'status', status, error: err ? String(err.message || err) : null }))

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const command = JSON.parse(line)
  if (command.broadcast) {
    const result = await channel.send({ type: 'broadcast', event: command.broadcast.event, payload: command.broadcast.payload })
    out({ kind: 'sent', result })
  }
  if (command.track) out({ kind: 'tracked', result: await channel.track(command.track) })
  if (command.setAuth) { await client.setAuth(command.setAuth); out({ kind: 'auth' }) }
  if (command.close) { await client.removeAllChannels(); client.disconnect(); process.exit(0) }
})
