# Lab 14.1's reference `canary`, ported to check the page's weights.
def canary(weights, at, percent):
    others = [w for i, w in enumerate(weights) if i != at]
    largest, s, p = max(others), sum(others), percent
    for k in range(1, 1000 // largest + 1):
        c = min(max((2 * p * k * s + (100 - p)) // (2 * (100 - p)), 1), 1000)
        share = 100 * c / (c + k * s)
        if abs(share - p) <= 0.5:
            return [c if i == at else w * k for i, w in enumerate(weights)], round(share, 2)
    return None
for start in ([1, 1, 1], [10, 10, 1]):
    for p in (5, 25):
        print(start, p, canary(start, 2, p))
