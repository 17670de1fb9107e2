// Drives the official realtime-js client (V2 protocol, its default) for the Python test: connects, subscribes to
// postgres_changes, broadcast and presence on one channel, and prints every event as one JSON line on stdout.
// Commands arrive as JSON lines on stdin: {"broadcast": {...}} | {"track": {...}} | {"close": true}.
const { RealtimeClient } = require('@supabase/realtime-js')
const WebSocket = require('ws')
const readline = require('readline')

const [url, token, topic, table, filter] = process.argv.slice(2)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

const client = new RealtimeClient(url, { params: { apikey: token }, transport: WebSocket, heartbeatIntervalMs: 5000 })
client.setAuth(token)
const channel = client.channel(topic, { config: { broadcast: { self: true, ack: true }, presence: { key: 'js' } } })
channel
  .on('postgres_changes', { event: '*', schema: 'public', table, filter: filter || undefined }, (p) =>
    out({ kind: 'postgres_changes', eventType: p.eventType, new: p.new, old: p.old, table: p.table }))
  .on('broadcast', { event: 'note' }, (p) => out({ kind: 'broadcast', payload: p.payload }))
  .on('presence', { event: 'sync' }, () => out({ kind: 'presence', state: channel.presenceState() }))
  .on('system', {}, (p) => out({ kind: 'system', payload: p }))
  .subscribe((status, err) => out({ kind: 'status', status, error: err ? String(err) : null }))

readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const command = JSON.parse(line)
  if (command.broadcast) out({ kind: 'sent', result: await channel.send({ type: 'broadcast', event: 'note', payload: command.broadcast }) })
  if (command.track) out({ kind: 'tracked', result: await channel.track(command.track) })
  if (command.close) { await client.removeAllChannels(); client.disconnect(); process.exit(0) }
})
