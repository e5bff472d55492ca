from tests.app import SAME_ORIGIN, build_app


async def test_login_me_logout(database):
    test_app = build_app(database)
    await test_app.add_account("a@example.com")
    async with test_app.client() as client:
        response = await client.post("/login", params={"email": "a@example.com"}, headers=SAME_ORIGIN)
        assert response.status_code == 200
        me = await client.get("/me")
        assert me.json()["email"] == "a@example.com"
        assert (await client.post("/logout", headers=SAME_ORIGIN)).status_code == 200
        assert (await client.get("/me")).status_code == 401
