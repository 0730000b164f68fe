def collect(item, bucket=[]):  # noqa: B006 - the shared default is the behaviour under test
    bucket.append(item)
    return list(bucket)
