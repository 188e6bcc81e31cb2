"""The notifier: pushes alerts from Kafka to operators' systems as signed webhooks, with retries."""
