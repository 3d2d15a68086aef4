from server_helpers import body, create_run, post_points

async def test_smoke(api):
    r = await api("GET", "health")
    print(r.code, r.body)
    run = await create_run(api, name="a")
    print(run)
    print(await post_points(api, run["id"], {"train/loss": [(0, 1.0), (1, float("nan"))]}))
    r = await api("GET", f"runs/{run['id']}/metrics/train/loss")
    print(r.code, r.body)
    r = await api("GET", f"runs/{run['id']}/metrics/train/loss/latest")
    print(r.code, r.body)
