def bucketize(items, key):
    buckets = {}
    for item in items:
        k = key(item)
        if k not in buckets:
            buckets[k] = []
        buckets[k].append(item)
    return buckets
