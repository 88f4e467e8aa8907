def test_health_answers_healthy(client, db):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
