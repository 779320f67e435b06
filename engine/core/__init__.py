"""Pure rules: WhatsApp payloads, the inbound decision, debounce, the turn policy, behaviour,
prompts, chunking, replies, business hours, names and secrets. Standard library only."""
