// Prometheus text exposition. Labels are bounded: route patterns (never raw paths), states, a few
// fixed outcomes.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class Metrics {
  constructor() {
    this.started = Date.now()
    this.http = new Map() // `${method} ${route} ${class}` -> count
    this.latency = new Map() // route -> { buckets, sum, count }
    this.messages = { in: 0, out: 0 }
    this.reconnects = 0
    this.webhookDeliveries = { delivered: 0, failed: 0 }
    this.rateLimited = 0
    this.fencedConnections = 0
  }

  observe(method, route, status, seconds) {
    const key = `${method} ${route} ${Math.floor(status / 100)}xx`
    this.http.set(key, (this.http.get(key) ?? 0) + 1)
    let h = this.latency.get(route)
    if (!h) this.latency.set(route, (h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }))
    BUCKETS.forEach((le, i) => {
      if (seconds <= le) h.buckets[i]++
    })
    h.sum += seconds
    h.count++
  }

  /** The exposition text, with the gauges read at scrape time. */
  render({ counts, queueDepth, version, streams, cluster }) {
    const esc = (v) => String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
    const lines = []
    const head = (name, type, help) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    head('walink_gateway_build_info', 'gauge', 'Build information.')
    lines.push(`walink_gateway_build_info{version="${esc(version)}",node="${esc(process.version)}"} 1`)
    head('walink_gateway_uptime_seconds', 'gauge', 'Seconds since the gateway started.')
    lines.push(`walink_gateway_uptime_seconds ${((Date.now() - this.started) / 1000).toFixed(3)}`)
    head('walink_gateway_instances', 'gauge', 'Instances by state.')
    for (const [state, n] of Object.entries(counts)) lines.push(`walink_gateway_instances{state="${state}"} ${n}`)
    head('walink_gateway_messages_total', 'counter', 'Messages received and sent.')
    lines.push(`walink_gateway_messages_total{direction="in"} ${this.messages.in}`, `walink_gateway_messages_total{direction="out"} ${this.messages.out}`)
    head('walink_gateway_reconnects_total', 'counter', 'Reconnections of instances.')
    lines.push(`walink_gateway_reconnects_total ${this.reconnects}`)
    head('walink_gateway_webhook_queue_depth', 'gauge', 'Webhook deliveries waiting.')
    lines.push(`walink_gateway_webhook_queue_depth ${queueDepth}`)
    head('walink_gateway_webhook_deliveries_total', 'counter', 'Webhook delivery attempts by outcome.')
    lines.push(`walink_gateway_webhook_deliveries_total{result="delivered"} ${this.webhookDeliveries.delivered}`, `walink_gateway_webhook_deliveries_total{result="failed"} ${this.webhookDeliveries.failed}`)
    head('walink_gateway_event_streams', 'gauge', 'Open event streams.')
    lines.push(`walink_gateway_event_streams ${streams}`)
    head('walink_gateway_rate_limited_total', 'counter', 'Requests refused by the rate limit.')
    lines.push(`walink_gateway_rate_limited_total ${this.rateLimited}`)
    head('walink_gateway_fenced_connections_total', 'counter', 'Connections ended because another worker owns the instance now.')
    lines.push(`walink_gateway_fenced_connections_total ${this.fencedConnections}`)
    if (cluster) {
      head('walink_gateway_worker_lease_valid', 'gauge', 'Whether this worker holds a valid lease (several workers on PostgreSQL).')
      lines.push(`walink_gateway_worker_lease_valid ${cluster.leaseValid ? 1 : 0}`)
      head('walink_gateway_worker_instances', 'gauge', 'Instances whose lease this worker holds.')
      lines.push(`walink_gateway_worker_instances ${cluster.owned}`)
      head('walink_gateway_worker_fences_total', 'counter', 'Times this worker fenced itself (lease deadline passed or lease reaped).')
      lines.push(`walink_gateway_worker_fences_total ${cluster.fences}`)
      head('walink_gateway_worker_adopted_total', 'counter', 'Instances adopted from dead workers.')
      lines.push(`walink_gateway_worker_adopted_total ${cluster.adopted}`)
      head('walink_gateway_forwarded_requests_total', 'counter', 'API requests forwarded to the owning worker.')
      lines.push(`walink_gateway_forwarded_requests_total ${cluster.forwarded}`)
      head('walink_gateway_fenced_writes_total', 'counter', 'Writes refused because the lease ran out (deadline) or the epoch was stale (epoch).')
      lines.push(`walink_gateway_fenced_writes_total{by="deadline"} ${cluster.refusedWrites.deadline}`, `walink_gateway_fenced_writes_total{by="epoch"} ${cluster.refusedWrites.epoch}`)
    }
    head('walink_gateway_http_requests_total', 'counter', 'HTTP requests by route pattern and status class.')
    for (const [key, n] of this.http) {
      const [method, route, cls] = key.split(' ')
      lines.push(`walink_gateway_http_requests_total{method="${method}",route="${esc(route)}",status="${cls}"} ${n}`)
    }
    head('walink_gateway_http_request_duration_seconds', 'histogram', 'HTTP request latency by route pattern.')
    for (const [route, h] of this.latency) {
      BUCKETS.forEach((le, i) => lines.push(`walink_gateway_http_request_duration_seconds_bucket{route="${esc(route)}",le="${le}"} ${h.buckets[i]}`))
      lines.push(`walink_gateway_http_request_duration_seconds_bucket{route="${esc(route)}",le="+Inf"} ${h.count}`)
      lines.push(`walink_gateway_http_request_duration_seconds_sum{route="${esc(route)}"} ${h.sum.toFixed(6)}`)
      lines.push(`walink_gateway_http_request_duration_seconds_count{route="${esc(route)}"} ${h.count}`)
    }
    return `${lines.join('\n')}\n`
  }
}
