from __future__ import annotations

from django.contrib.auth import password_validation
from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from core.models import User, normalize_email


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, write_only=True, trim_whitespace=False)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate_email(self, value: str) -> str:
        email = normalize_email(value)
        if User.objects.filter(email=email).exists():
            raise serializers.ValidationError("a user with this email already exists.")
        return email

    def validate(self, attrs: dict) -> dict:
        candidate = User(email=attrs["email"], name=attrs.get("name", ""))
        try:
            password_validation.validate_password(attrs["password"], candidate)
        except Exception as exc:  # django.core.exceptions.ValidationError
            messages = getattr(exc, "messages", [str(exc)])
            raise serializers.ValidationError({"password": [" ".join(messages)]}) from None
        return attrs


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "name"]


class EmailTokenObtainPairSerializer(TokenObtainPairSerializer):
    """Emails log in case-insensitively."""

    def validate(self, attrs: dict) -> dict:
        attrs[self.username_field] = normalize_email(attrs.get(self.username_field, ""))
        return super().validate(attrs)
